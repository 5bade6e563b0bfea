"""deadletters on AWS Lambda: EventBridge Scheduler invokes it; it drains the SQS DLQs into
``dead_jobs``. Anything that is not a schedule is dead-lettered in the shared store; a transient
failure raises, and the schedule's retry policy takes over (the next tick imports the rest anyway).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.deadletters.core import import_dead_letters
from shared.envelopes.aws import trigger_of
from shared.platform.runtime import FunctionRuntime, payload_digest

__all__ = ["handler", "runtime"]

logger = Logger(service="contentfn-deadletters")
metrics = Metrics(namespace="contentfn", service="deadletters")
copy_config_to_registered_loggers(source_logger=logger, include={"functions", "shared"})
runtime = FunctionRuntime("deadletters", "aws")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    delivery_id = payload_digest(event)
    logger.set_correlation_id(delivery_id)
    if trigger_of(event) != "schedule":
        runtime.poison("deadletters answers schedule events only", event, delivery_id=delivery_id)
        return {"status": "dead_lettered"}
    report = import_dead_letters(runtime.services)
    logger.info("dead letters imported", extra=report.model_dump(mode="json"))
    metrics.add_metric(name="DeadLettersImported", unit=MetricUnit.Count, value=report.imported)
    return report.model_dump(mode="json")
