"""embed on AWS Lambda: SQS batches of embed jobs (ReportBatchItemFailures), and EventBridge
Scheduler ticks that drain jobs waiting in the Postgres outbox.

A batch is embedded in one go (one model call, one transaction), then each record's outcome is
reported through Powertools' batch processor: transient failures and poison records appear in
``batchItemFailures``. Poison is dead-lettered in the shared store first, and SQS's redrive moves
the raw message to the queue's DLQ once ``maxReceiveCount`` is reached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.embed.delivery import drain_outbox, embed_delivered
from shared.entry import FunctionRuntime, payload_digest
from shared.envelopes.aws import job_from_sqs_record, schedule_tick_from_eventbridge, trigger_of
from shared.envelopes.errors import EnvelopeError
from shared.events import Job

__all__ = ["JobNotDone", "handler", "runtime"]

logger = Logger(service="contentfn-embed")
metrics = Metrics(namespace="contentfn", service="embed")
copy_config_to_registered_loggers(source_logger=logger, include={"functions.embed.core", "shared.entry"})
runtime = FunctionRuntime("embed", "aws")
_processor = BatchProcessor(event_type=EventType.SQS)
_source_queues: dict[str, Any] = {}
# Leave this much of the invocation for reporting when draining on a schedule.
_DRAIN_MARGIN_S = 10.0


class JobNotDone(Exception):
    """Marks a record for ``batchItemFailures`` (its job failed or was dead-lettered)."""


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = trigger_of(event)
    if trigger == "schedule":
        tick = schedule_tick_from_eventbridge(event, now=datetime.now(UTC))
        logger.set_correlation_id(f"{tick.schedule}@{tick.fired_at.isoformat()}")
        budget = max(1.0, context.get_remaining_time_in_millis() / 1000 - _DRAIN_MARGIN_S)
        totals = drain_outbox(runtime, budget_s=budget)
        metrics.add_metric(name="JobsEmbedded", unit=MetricUnit.Count, value=totals["embedded"])
        return totals
    if trigger != "sqs":
        runtime.poison(f"embed does not handle {trigger} events", event, delivery_id=payload_digest(event))
        return {"status": "dead_lettered"}
    return _handle_batch(event, context)


def _source_backlog(queue_arn: str | None) -> Callable[[], int] | None:
    """Messages waiting in the SQS queue a batch came from (GetQueueAttributes on its own queue,
    which the consumer's role holds); None when the batch does not name an SQS queue."""
    if not queue_arn or not queue_arn.startswith("arn:aws:sqs:") or queue_arn.count(":") != 5:
        return None
    queue = _source_queues.get(queue_arn)
    if queue is None:
        from shared.queue.sqs import SqsQueue

        region, account, name = queue_arn.split(":")[3:6]
        endpoint = runtime.settings.aws_endpoint_url
        base = endpoint.rstrip("/") if endpoint else f"https://sqs.{region}.amazonaws.com"
        queue = _source_queues[queue_arn] = SqsQueue.create(
            f"{base}/{account}/{name}", kind="embed", endpoint_url=endpoint, region=region
        )
    return lambda: queue.depth()


def _handle_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event["Records"]
    logger.set_correlation_id(records[0].get("messageId"))
    jobs: list[Job] = []
    not_done: set[str] = set()
    for record in records:
        try:
            jobs.append(job_from_sqs_record(record))
        except EnvelopeError as exc:
            runtime.poison(exc, record.get("body"), delivery_id=f"sqs:{record.get('messageId')}")
            not_done.add(str(record.get("messageId")))
    if jobs:
        delivery = embed_delivered(jobs, runtime, source_backlog=_source_backlog(records[0].get("eventSourceARN")))
        not_done |= delivery.to_retry | delivery.dead
        metrics.add_metric(name="JobsDeadLettered", unit=MetricUnit.Count, value=len(delivery.dead))
    logger.info("embed batch", extra={"records": len(records), "not_done": sorted(not_done)})
    metrics.add_metric(name="JobsRetried", unit=MetricUnit.Count, value=len(not_done))
    metrics.add_metric(name="JobsDone", unit=MetricUnit.Count, value=len(records) - len(not_done))

    def report(record: SQSRecord) -> None:
        if record.message_id in not_done:
            raise JobNotDone(record.message_id)

    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=report, processor=_processor, context=context
    )
