"""ingest on AWS Lambda. One handler for the three ways S3 announces an upload or a deletion:

- S3 notifications queued in SQS (event source mapping with ReportBatchItemFailures): what
  Terraform wires, because the queue's visibility (6x the timeout) and redrive outlive a crashed
  invocation, where an asynchronous invoke is retried twice within minutes and then dropped,
- S3 event notification invoking the function (asynchronous invoke),
- S3 "Object Created" / "Object Deleted" through EventBridge (asynchronous invoke).

``ObjectRemoved`` records remove what the object alone produced (:mod:`functions.ingest.deletion`).

Outcomes: a file that can never be ingested is reported ``rejected`` by the core (ledger + shared
dead-letter store) and acknowledged. A payload that is not an S3 event is dead-lettered in the
shared store; on the asynchronous paths it is then acknowledged, in an SQS batch it is also listed
in ``batchItemFailures`` so SQS's redrive keeps the raw message in the queue's DLQ (the dead-letter
import recognises it by its message id and records it no second time). A transient error raises:
Lambda retries the asynchronous invoke, SQS redelivers the batch item (an in-progress claim of a
crashed delivery lasts just past the function timeout, well within the queue's visibility).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.ingest.core import handle_object_created
from functions.ingest.deletion import handle_object_deleted
from functions.ingest.reports import FileReport
from shared.envelopes.aws import (
    object_from_eventbridge,
    objects_from_s3_notification,
    objects_from_sqs_record,
    trigger_of,
)
from shared.envelopes.errors import EnvelopeError, UnsupportedEvent
from shared.events import ObjectCreated, ObjectDeleted, ObjectEvent
from shared.platform.aws import powertools_logger
from shared.platform.runtime import FunctionRuntime, payload_digest

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

__all__ = ["handler", "runtime"]

logger = powertools_logger("contentfn-ingest")
metrics = Metrics(namespace="contentfn", service="ingest")
runtime = FunctionRuntime("ingest", "aws")
_processor: BatchProcessor | None = None


def _on_object(event: ObjectEvent) -> dict[str, Any]:
    return _delete(event) if isinstance(event, ObjectDeleted) else _ingest(event)


def _delete(event: ObjectDeleted) -> dict[str, Any]:
    logger.append_keys(object=event.uri, generation=event.generation)
    report = handle_object_deleted(event, runtime.services)
    logger.info("object deleted", extra={"tracks_removed": report.tracks})
    metrics.add_metric(name="ObjectsDeleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="TracksRemoved", unit=MetricUnit.Count, value=report.tracks)
    return report.model_dump(mode="json")


def _ingest(event: ObjectCreated) -> dict[str, Any]:
    logger.append_keys(object=event.uri, idempotency_key=event.idempotency_key)
    outcome = handle_object_created(event, runtime.services)
    report = outcome.result
    rows_ok = report.rows_ok if isinstance(report, FileReport) else None
    said = "replayed" if outcome.replayed else report.status
    logger.info("ingest %s", said, extra={"outcome": said, "rows_ok": rows_ok})
    if outcome.replayed:
        metrics.add_metric(name="RedeliveriesReplayed", unit=MetricUnit.Count, value=1)
    elif report.status == "rejected":
        metrics.add_metric(name="ObjectsRejected", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="ObjectsIngested", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RowsIngested", unit=MetricUnit.Count, value=rows_ok or 0)
    return outcome.as_json()


def _record_handler(record: SQSRecord) -> list[dict[str, Any]]:
    try:
        objects = objects_from_sqs_record(record.raw_event)
    except EnvelopeError as exc:
        runtime.poison(exc, record.body, delivery_id=f"sqs:{record.message_id}")
        metrics.add_metric(name="EnvelopesDeadLettered", unit=MetricUnit.Count, value=1)
        raise
    return [_on_object(obj) for obj in objects]


def _sqs_batch(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported on the first SQS batch only: S3 and EventBridge invocations never pay for it.
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    global _processor
    if _processor is None:
        _processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=_record_handler, processor=_processor, context=context
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@runtime.relaying
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = trigger_of(event)
    if trigger == "sqs":
        logger.set_correlation_id(event["Records"][0].get("messageId"))
        return _sqs_batch(event, context)
    # EventBridge events carry an id; a bare S3 notification is identified by its content.
    delivery_id = str(event.get("id") or payload_digest(event))
    logger.set_correlation_id(delivery_id)
    try:
        if trigger == "s3":
            objects = objects_from_s3_notification(event)
        elif trigger == "eventbridge_s3":
            objects = [object_from_eventbridge(event)]
        else:
            raise UnsupportedEvent(f"ingest does not handle {trigger} events")
    except EnvelopeError as exc:
        runtime.poison(exc, event, delivery_id=delivery_id)
        metrics.add_metric(name="EnvelopesDeadLettered", unit=MetricUnit.Count, value=1)
        return {"status": "dead_lettered", "error": str(exc)}
    return {"reports": [_on_object(obj) for obj in objects]}
