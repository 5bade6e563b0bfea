"""AWS envelopes → domain events: S3 notifications (direct, in SQS, via EventBridge), SQS job
batches, EventBridge schedules, API Gateway HTTP API v2 and Lambda function URL requests.

Pure functions over the invoke payload (plain dicts). The Lambda entry points may wrap the same
dicts in Powertools data classes for their own use; the domain mapping lives here, once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import ValidationError

from shared.envelopes._common import MAX_HTTP_BODY_BYTES, dig, job_from_body, parse_time, to_mapping
from shared.envelopes.errors import MalformedEnvelope, RequestTooLarge, UnsupportedEvent
from shared.events import HttpRequest, HttpResponse, Job, ObjectCreated, ObjectDeleted, ObjectEvent, ScheduleTick

__all__ = [
    "AwsTrigger",
    "apigw_v2_response",
    "http_request_from_apigw_v2",
    "job_from_sqs_record",
    "object_from_eventbridge",
    "objects_from_s3_notification",
    "objects_from_sqs_record",
    "schedule_tick_from_eventbridge",
    "trigger_of",
]

AwsTrigger = Literal["s3", "sqs", "eventbridge_s3", "schedule", "http", "unknown"]

_EVENTBRIDGE_OBJECT_TYPES = ("Object Created", "Object Deleted")


def trigger_of(event: Any) -> AwsTrigger:
    """Which AWS service sent this invoke payload (one handler may be wired to several)."""
    if not isinstance(event, Mapping):
        return "unknown"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        source = records[0].get("eventSource")
        return "sqs" if source == "aws:sqs" else "s3" if source == "aws:s3" else "unknown"
    if event.get("source") == "aws.s3" and event.get("detail-type") in _EVENTBRIDGE_OBJECT_TYPES:
        return "eventbridge_s3"
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "contentfn.scheduler":
        return "schedule"
    if event.get("version") == "2.0" and isinstance(event.get("requestContext"), Mapping):
        return "http"
    return "unknown"


def objects_from_s3_notification(event: Any) -> list[ObjectEvent]:
    """An S3 notification's records (``ObjectCreated:*`` and ``ObjectRemoved:*``); an ``s3:TestEvent``
    (sent when notifications are set up) yields none."""
    doc = to_mapping(event, "s3 notification")
    if doc.get("Event") == "s3:TestEvent":
        return []
    records = dig(doc, "Records", what="s3 notification")
    if not isinstance(records, list):
        raise MalformedEnvelope("s3 notification: Records is not a list")
    return [_object_from_s3_record(r) for r in records]


def objects_from_sqs_record(record: Mapping[str, Any]) -> list[ObjectEvent]:
    """An SQS record whose body is an S3 notification (S3 → SQS → Lambda)."""
    return objects_from_s3_notification(dig(record, "body", what="sqs record"))


def object_from_eventbridge(event: Any) -> ObjectEvent:
    """S3 ``Object Created`` or ``Object Deleted`` through EventBridge; its key is form-URL-encoded
    like a notification's. A deletion that created a delete marker takes the whole key away; a
    permanent deletion takes the version it names."""
    doc = to_mapping(event, "eventbridge event")
    kind = doc.get("detail-type")
    if doc.get("source") != "aws.s3" or kind not in _EVENTBRIDGE_OBJECT_TYPES:
        raise UnsupportedEvent("eventbridge event is not an S3 Object Created or Object Deleted event")
    obj = dig(doc, "detail", "object", what="eventbridge s3 event")
    if kind == "Object Deleted":
        marker = (doc.get("detail") or {}).get("deletion-type") == "Delete Marker Created"
        return _object_deleted(
            bucket=dig(doc, "detail", "bucket", "name", what="eventbridge s3 event"),
            raw_key=dig(obj, "key", what="eventbridge s3 event"),
            version=None if marker else obj.get("version-id"),
            when=parse_time(doc.get("time"), "eventbridge s3 event"),
        )
    return _object_created(
        bucket=dig(doc, "detail", "bucket", "name", what="eventbridge s3 event"),
        raw_key=dig(obj, "key", what="eventbridge s3 event"),
        size=obj.get("size"),
        version=obj.get("version-id"),
        etag=obj.get("etag") or obj.get("eTag"),
        when=parse_time(doc.get("time"), "eventbridge s3 event"),
    )


def job_from_sqs_record(record: Mapping[str, Any]) -> Job:
    """An SQS record carrying a job message; ``ApproximateReceiveCount`` is the attempt number."""
    attrs = record.get("attributes") or {}
    try:
        attempts = int(attrs.get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        attempts = 1
    msg_attrs: dict[str, str] = {
        str(k): str(v["stringValue"])
        for k, v in (record.get("messageAttributes") or {}).items()
        if isinstance(v, Mapping) and isinstance(v.get("stringValue"), str)
    }
    return job_from_body(
        dig(record, "body", what="sqs record"),
        message_id=str(dig(record, "messageId", what="sqs record")),
        attempts=attempts,
        attributes=msg_attrs,
        what="sqs job message",
    )


def schedule_tick_from_eventbridge(event: Any, *, now: datetime | None = None) -> ScheduleTick:
    """EventBridge Scheduler input (``{"source": "contentfn.scheduler", ...}``) or a rule's ``Scheduled Event``.

    Scheduler payloads without a rendered ``scheduled_time`` fall back to ``now`` (the invoke time).
    """
    doc = to_mapping(event, "eventbridge schedule")
    if doc.get("detail-type") == "Scheduled Event":
        resources = doc.get("resources") or []
        name = str(resources[0]).rsplit("/", 1)[-1] if resources else ""
        fired = parse_time(doc.get("time"), "eventbridge schedule")
    elif doc.get("source") == "contentfn.scheduler":
        arn = doc.get("schedule_arn")
        name = str(arn).rsplit("/", 1)[-1] if arn else str(doc.get("schedule") or doc.get("function") or "")
        fired = parse_time(doc.get("scheduled_time"), "eventbridge schedule") or now
    else:
        raise UnsupportedEvent("event is not a schedule")
    if not name or fired is None:
        raise MalformedEnvelope("eventbridge schedule: no schedule name or time")
    return ScheduleTick(schedule=name, fired_at=fired)


def http_request_from_apigw_v2(event: Any, *, max_body_bytes: int = MAX_HTTP_BODY_BYTES) -> HttpRequest:
    """API Gateway HTTP API (payload 2.0) or a function URL request → HttpRequest.

    The body size is checked before base64 decoding; the body is never echoed in an error.
    """
    doc = to_mapping(event, "http request")
    method = dig(doc, "requestContext", "http", "method", what="http request")
    raw_body = doc.get("body") or ""
    if not isinstance(raw_body, str):
        raise MalformedEnvelope("http request: body is not a string")
    encoded = bool(doc.get("isBase64Encoded"))
    if len(raw_body) > (max_body_bytes * 4 // 3 + 4 if encoded else max_body_bytes * 4):
        raise RequestTooLarge(f"request body over the {max_body_bytes}-byte limit")
    try:
        body = base64.b64decode(raw_body, validate=True) if encoded else raw_body.encode("utf-8")
    except (binascii.Error, ValueError):
        raise MalformedEnvelope("http request: body is not valid base64") from None
    if len(body) > max_body_bytes:
        raise RequestTooLarge(f"request body over the {max_body_bytes}-byte limit")
    headers = {str(k): str(v) for k, v in (doc.get("headers") or {}).items()}
    cookies = doc.get("cookies")
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    return HttpRequest.from_parts(
        str(method), str(doc.get("rawPath") or "/"), str(doc.get("rawQueryString") or ""), headers, body
    )


def apigw_v2_response(response: HttpResponse) -> dict[str, Any]:
    """HttpResponse → the payload 2.0 response dict (text bodies as text, others base64)."""
    try:
        text, encoded = response.body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(response.body).decode("ascii"), True
    return {"statusCode": response.status, "headers": dict(response.headers), "body": text, "isBase64Encoded": encoded}


def _object_from_s3_record(record: Any) -> ObjectEvent:
    if not isinstance(record, Mapping):
        raise MalformedEnvelope("s3 notification: a record is not an object")
    name = str(record.get("eventName") or "").removeprefix("s3:")
    obj = dig(record, "s3", "object", what="s3 record")
    if name.startswith("ObjectRemoved:"):
        # A delete marker hides every version of the key; a plain delete names the version it
        # removed for good (no versionId: an unversioned bucket, where the key itself is gone).
        return _object_deleted(
            bucket=dig(record, "s3", "bucket", "name", what="s3 record"),
            raw_key=dig(obj, "key", what="s3 record"),
            version=None if name == "ObjectRemoved:DeleteMarkerCreated" else obj.get("versionId"),
            when=parse_time(record.get("eventTime"), "s3 record"),
        )
    if not name.startswith("ObjectCreated:"):
        raise UnsupportedEvent(f"s3 event {name!r} is not an ObjectCreated or ObjectRemoved event")
    return _object_created(
        bucket=dig(record, "s3", "bucket", "name", what="s3 record"),
        raw_key=dig(obj, "key", what="s3 record"),
        size=obj.get("size"),
        version=obj.get("versionId"),
        etag=obj.get("eTag"),
        when=parse_time(record.get("eventTime"), "s3 record"),
    )


def _object_created(
    *, bucket: Any, raw_key: Any, size: Any, version: Any, etag: Any, when: datetime | None
) -> ObjectCreated:
    if not isinstance(raw_key, str):
        raise MalformedEnvelope("s3 event: object key is not a string")
    try:
        return ObjectCreated(
            bucket=str(bucket),
            # S3 form-encodes keys in events ("a b.csv" arrives as "a+b.csv"); the API wants them raw.
            key=unquote_plus(raw_key),
            size=int(size) if size is not None else None,
            generation=str(version) if version else None,
            etag=str(etag).strip('"') if etag else None,
            event_time=when,
        )
    except (ValueError, ValidationError):
        raise MalformedEnvelope("s3 event: invalid bucket, key or size") from None


def _object_deleted(*, bucket: Any, raw_key: Any, version: Any, when: datetime | None) -> ObjectDeleted:
    if not isinstance(raw_key, str):
        raise MalformedEnvelope("s3 event: object key is not a string")
    try:
        return ObjectDeleted(
            bucket=str(bucket),
            key=unquote_plus(raw_key),
            generation=str(version) if version else None,
            event_time=when,
        )
    except (ValueError, ValidationError):
        raise MalformedEnvelope("s3 event: invalid bucket or key") from None
