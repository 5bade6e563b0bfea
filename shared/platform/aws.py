"""AWS Lambda handler for a job-consuming function: SQS batches (ReportBatchItemFailures) and
EventBridge Scheduler ticks that drain jobs waiting in the Postgres outbox.

Each job of a batch is processed on its own (each may call out over the network); its outcome is
reported through Powertools' batch processor: transient failures and poison records appear in
``batchItemFailures``. Poison is dead-lettered in the shared store first, and SQS's redrive moves
the raw message to the queue's DLQ once ``maxReceiveCount`` is reached; the dead-letter import
(``shared.queue.dead_import``) then finds the record by the message id and only removes it from
the DLQ, so the store of record holds it once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.envelopes.aws import job_from_sqs_record, schedule_tick_from_eventbridge, trigger_of
from shared.envelopes.errors import EnvelopeError
from shared.events import Job
from shared.observability.logs import ContextFilter
from shared.platform.jobs import Backlog, JobHandling, deliver, drain
from shared.platform.runtime import FunctionRuntime, payload_digest

__all__ = ["JobFunction", "JobNotDone", "job_function", "powertools_logger"]

_DRAIN_MARGIN_S = 10.0
_source_queues: dict[str, Any] = {}


class JobNotDone(Exception):
    """Marks a record for ``batchItemFailures`` (its job failed or was dead-lettered)."""


@dataclass(frozen=True)
class JobFunction:
    handler: Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
    runtime: FunctionRuntime
    logger: Logger
    metrics: Metrics


def powertools_logger(service: str) -> Logger:
    """Powertools' Logger for a function, shared with the project's own loggers, each record
    carrying the trace id and the job or object it concerns (:class:`ContextFilter`)."""
    logger = Logger(service=service)
    if logger.registered_handler is not None:
        logger.registered_handler.addFilter(ContextFilter(service))
    copy_config_to_registered_loggers(source_logger=logger, include={"functions", "shared"})
    return logger


def source_backlog(runtime: FunctionRuntime, queue_arn: str | None, kind: str) -> Backlog | None:
    """Messages waiting in the SQS queue a batch came from (GetQueueAttributes on its own queue,
    which the consumer's role holds); None when the batch does not name an SQS queue."""
    if not queue_arn or not queue_arn.startswith("arn:aws:sqs:") or queue_arn.count(":") != 5:
        return None
    queue = _source_queues.get(queue_arn)
    if queue is None:
        from shared.queue.sqs import SqsQueue

        region, account, queue_name = queue_arn.split(":")[3:6]
        endpoint = runtime.settings.aws_endpoint_url
        base = endpoint.rstrip("/") if endpoint else f"https://sqs.{region}.amazonaws.com"
        queue = _source_queues[queue_arn] = SqsQueue.create(
            f"{base}/{account}/{queue_name}", kind=kind, endpoint_url=endpoint, region=region
        )
    return lambda: int(queue.depth())


def job_function(name: str, handling: JobHandling) -> JobFunction:
    """Build the Lambda handler of function ``name`` consuming jobs of ``handling.kind``."""
    logger = powertools_logger(f"contentfn-{name}")
    metrics = Metrics(namespace="contentfn", service=name)
    runtime = FunctionRuntime(name, "aws")
    processor = BatchProcessor(event_type=EventType.SQS)

    def handle_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
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
            backlog = source_backlog(runtime, records[0].get("eventSourceARN"), handling.kind)
            delivery = deliver(handling, jobs, runtime, backlog)
            if handling.report_store:
                runtime.report_store_metrics()
            not_done |= delivery.to_retry | delivery.dead
            metrics.add_metric(name="JobsDeadLettered", unit=MetricUnit.Count, value=len(delivery.dead))
        logger.info(f"{name} batch", extra={"records": len(records), "not_done": sorted(not_done)})
        metrics.add_metric(name="JobsRetried", unit=MetricUnit.Count, value=len(not_done))
        metrics.add_metric(name="JobsDone", unit=MetricUnit.Count, value=len(records) - len(not_done))

        def report(record: SQSRecord) -> None:
            if record.message_id in not_done:
                raise JobNotDone(record.message_id)

        return process_partial_response(  # type: ignore[return-value]
            event=event, record_handler=report, processor=processor, context=context
        )

    @metrics.log_metrics
    @logger.inject_lambda_context(clear_state=True)
    @runtime.relaying
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        trigger = trigger_of(event)
        if trigger == "schedule":
            tick = schedule_tick_from_eventbridge(event, now=datetime.now(UTC))
            logger.set_correlation_id(f"{tick.schedule}@{tick.fired_at.isoformat()}")
            budget = max(1.0, context.get_remaining_time_in_millis() / 1000 - _DRAIN_MARGIN_S)
            totals = drain(handling, runtime, budget_s=budget)
            runtime.report_store_metrics()
            metrics.add_metric(name="JobsDone", unit=MetricUnit.Count, value=totals.get(handling.done_key, 0))
            return totals
        if trigger != "sqs":
            runtime.poison(f"{name} does not handle {trigger} events", event, delivery_id=payload_digest(event))
            return {"status": "dead_lettered"}
        return handle_batch(event, context)

    return JobFunction(handler, runtime, logger, metrics)
