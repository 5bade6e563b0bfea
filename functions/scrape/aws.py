"""scrape on AWS Lambda: EventBridge Scheduler (or a scheduled rule) invokes it once per tick.

A tick is scraped at most once (idempotency record keyed by schedule and fire time). Anything that
is not a schedule is dead-lettered in the shared store; a transient failure raises, and Lambda's
asynchronous retry (then its on-failure destination) takes over.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.scrape.core import handle_tick
from shared.envelopes.aws import schedule_tick_from_eventbridge, trigger_of
from shared.envelopes.errors import EnvelopeError, UnsupportedEvent
from shared.platform.aws import powertools_logger
from shared.platform.runtime import FunctionRuntime, payload_digest

__all__ = ["handler", "runtime"]

logger = powertools_logger("contentfn-scrape")
metrics = Metrics(namespace="contentfn", service="scrape")
runtime = FunctionRuntime("scrape", "aws")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@runtime.relaying
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    delivery_id = str(event.get("id") or payload_digest(event)) if isinstance(event, dict) else payload_digest(event)
    logger.set_correlation_id(delivery_id)
    try:
        if trigger_of(event) != "schedule":
            raise UnsupportedEvent("scrape answers schedule events only")
        tick = schedule_tick_from_eventbridge(event, now=datetime.now(UTC))
    except EnvelopeError as exc:
        runtime.poison(exc, event, delivery_id=delivery_id)
        return {"status": "dead_lettered", "error": str(exc)}
    outcome = handle_tick(tick, runtime.services)
    said = "replayed" if outcome.replayed else outcome.result.status
    logger.info("scrape %s", said, extra={"stored": outcome.result.stored})
    # A replayed tick stored nothing now: its tracks were counted when it ran.
    metrics.add_metric(
        name="TracksScraped", unit=MetricUnit.Count, value=0 if outcome.replayed else outcome.result.stored
    )
    return outcome.as_json()
