"""Google Cloud envelopes → domain events: CloudEvents (Eventarc), Pub/Sub push, Cloud Scheduler.

Pure functions over headers, dicts and bytes, so they are golden-tested without the SDKs; the
functions-framework entry points hand them what the framework already parsed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from shared.envelopes._common import dig, job_from_body, parse_time, to_mapping
from shared.envelopes.errors import MalformedEnvelope, UnsupportedEvent
from shared.events import Job, ObjectCreated, ObjectDeleted, ObjectEvent, ScheduleTick

__all__ = [
    "GCS_DELETED",
    "GCS_FINALIZED",
    "PUBSUB_PUBLISHED",
    "PubSubMessage",
    "cloudevent_from_http",
    "is_scheduler_request",
    "job_from_pubsub",
    "object_created_from_cloudevent",
    "object_deleted_from_cloudevent",
    "object_event_from_cloudevent",
    "pubsub_from_cloudevent",
    "pubsub_from_push",
    "schedule_tick_from_pubsub",
    "schedule_tick_from_scheduler_http",
]

GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
# Sent when a generation is deleted for good, including one replaced by an overwrite; a versioned
# bucket's live object becoming noncurrent is ``archived`` instead, which is not handled.
GCS_DELETED = "google.cloud.storage.object.v1.deleted"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
_STRUCTURED = "application/cloudevents+json"


@dataclass(frozen=True)
class PubSubMessage:
    """One Pub/Sub message as delivered by push or by Eventarc (``data`` already base64-decoded)."""

    message_id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    publish_time: datetime | None = None
    ordering_key: str | None = None
    delivery_attempt: int = 1
    subscription: str | None = None


def cloudevent_from_http(headers: Mapping[str, str], body: bytes) -> tuple[dict[str, str], Any]:
    """Split a CloudEvents HTTP request (binary or structured mode) into (attributes, data)."""
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("content-type", "").split(";")[0].strip().lower() == _STRUCTURED:
        doc = dict(to_mapping(body, "cloudevent"))
        data = doc.pop("data", None)
        if data is None and "data_base64" in doc:
            data = _b64(doc.pop("data_base64"), "cloudevent data_base64")
        return {k: str(v) for k, v in doc.items()}, data
    attrs = {k[3:]: unquote(v) for k, v in lower.items() if k.startswith("ce-")}
    if "type" not in attrs or "specversion" not in attrs:
        raise MalformedEnvelope("cloudevent: no ce-type/ce-specversion headers and not structured mode")
    if lower.get("content-type"):
        attrs["datacontenttype"] = lower["content-type"]
    return attrs, to_mapping(body, "cloudevent data") if body else None


def object_created_from_cloudevent(attributes: Mapping[str, Any], data: Any) -> ObjectCreated:
    """``google.cloud.storage.object.v1.finalized`` → ObjectCreated keyed by bucket/name#generation."""
    kind = attributes.get("type")
    if kind != GCS_FINALIZED:
        raise UnsupportedEvent(f"cloudevent type {kind!r} is not {GCS_FINALIZED}")
    obj = to_mapping(data, "storage object data")
    size = obj.get("size")
    try:
        return ObjectCreated(
            bucket=dig(obj, "bucket", what="storage object data"),
            key=dig(obj, "name", what="storage object data"),
            size=int(size) if size is not None else None,
            generation=str(dig(obj, "generation", what="storage object data")),
            etag=obj.get("etag"),
            content_type=obj.get("contentType"),
            event_time=parse_time(obj.get("updated") or attributes.get("time"), "storage object data"),
        )
    except (ValueError, ValidationError):
        raise MalformedEnvelope("storage object data: invalid bucket, name or size") from None


def object_deleted_from_cloudevent(attributes: Mapping[str, Any], data: Any) -> ObjectDeleted:
    """``google.cloud.storage.object.v1.deleted`` → ObjectDeleted of that generation."""
    kind = attributes.get("type")
    if kind != GCS_DELETED:
        raise UnsupportedEvent(f"cloudevent type {kind!r} is not {GCS_DELETED}")
    obj = to_mapping(data, "storage object data")
    try:
        return ObjectDeleted(
            bucket=dig(obj, "bucket", what="storage object data"),
            key=dig(obj, "name", what="storage object data"),
            generation=str(dig(obj, "generation", what="storage object data")),
            event_time=parse_time(attributes.get("time") or obj.get("timeDeleted"), "storage object data"),
        )
    except (ValueError, ValidationError):
        raise MalformedEnvelope("storage object data: invalid bucket or name") from None


def object_event_from_cloudevent(attributes: Mapping[str, Any], data: Any) -> ObjectEvent:
    """A Cloud Storage CloudEvent of either handled type (finalized or deleted)."""
    if attributes.get("type") == GCS_DELETED:
        return object_deleted_from_cloudevent(attributes, data)
    return object_created_from_cloudevent(attributes, data)


def pubsub_from_push(body: Any) -> PubSubMessage:
    """A push subscription's wrapped payload ``{"message": {...}, "subscription", "deliveryAttempt"?}``."""
    doc = to_mapping(body, "pubsub push")
    message = PubSubMessage(**_message_fields(dig(doc, "message", what="pubsub push")))
    attempt = doc.get("deliveryAttempt")
    return replace(message, subscription=doc.get("subscription"), delivery_attempt=_attempt(attempt))


def pubsub_from_cloudevent(attributes: Mapping[str, Any], data: Any) -> PubSubMessage:
    """Eventarc ``messagePublished``: the CloudEvent data is ``{"message": {...}, "subscription"}``."""
    kind = attributes.get("type")
    if kind != PUBSUB_PUBLISHED:
        raise UnsupportedEvent(f"cloudevent type {kind!r} is not {PUBSUB_PUBLISHED}")
    doc = to_mapping(data, "pubsub cloudevent data")
    message = PubSubMessage(**_message_fields(dig(doc, "message", what="pubsub cloudevent data")))
    return replace(message, subscription=doc.get("subscription"))


def job_from_pubsub(message: PubSubMessage) -> Job:
    return job_from_body(
        message.data,
        message_id=message.message_id,
        attempts=message.delivery_attempt,
        attributes=message.attributes,
        what="pubsub job message",
    )


def is_scheduler_request(headers: Mapping[str, str]) -> bool:
    return any(str(k).lower() == "x-cloudscheduler" for k in headers)


def schedule_tick_from_scheduler_http(headers: Mapping[str, str]) -> ScheduleTick:
    """Cloud Scheduler HTTP target: the job name and schedule time come as ``X-CloudScheduler-*`` headers."""
    lower = {k.lower(): v for k, v in headers.items()}
    name = lower.get("x-cloudscheduler-jobname")
    fired = parse_time(lower.get("x-cloudscheduler-scheduletime"), "cloud scheduler")
    if not name or fired is None:
        raise MalformedEnvelope("cloud scheduler: missing X-CloudScheduler-JobName or -ScheduleTime")
    return ScheduleTick(schedule=name.rsplit("/", 1)[-1], fired_at=fired)


def schedule_tick_from_pubsub(message: PubSubMessage) -> ScheduleTick:
    """Cloud Scheduler Pub/Sub target: the schedule is the ``schedule`` attribute (or the body's ``function``)."""
    name = message.attributes.get("schedule")
    if not name and message.data:
        body = to_mapping(message.data, "scheduler message")
        name = body.get("schedule") or body.get("function")
    if not name or message.publish_time is None:
        raise MalformedEnvelope("scheduler message: no schedule name or publish time")
    return ScheduleTick(schedule=str(name), fired_at=message.publish_time)


def _message_fields(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, Mapping):
        raise MalformedEnvelope("pubsub message: expected an object")
    message_id = msg.get("messageId") or msg.get("message_id")
    if not message_id:
        raise MalformedEnvelope("pubsub message: missing messageId")
    attributes = msg.get("attributes") or {}
    if not isinstance(attributes, Mapping) or not all(isinstance(v, str) for v in attributes.values()):
        raise MalformedEnvelope("pubsub message: attributes must map strings to strings")
    return {
        "message_id": str(message_id),
        "data": _b64(msg.get("data") or "", "pubsub message data"),
        "attributes": dict(attributes),
        "publish_time": parse_time(msg.get("publishTime") or msg.get("publish_time"), "pubsub message"),
        "ordering_key": msg.get("orderingKey") or msg.get("ordering_key") or None,
    }


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedEnvelope(f"{what}: expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEnvelope(f"{what}: not valid base64") from None


def _attempt(value: Any) -> int:
    try:
        return max(1, int(value)) if value is not None else 1
    except (TypeError, ValueError):
        raise MalformedEnvelope("pubsub push: deliveryAttempt is not a number") from None
