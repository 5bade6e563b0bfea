"""Recognise any trigger payload in ``events/`` and turn it into domain events.

The entry points call the specific parsers (each knows its trigger); this dispatcher serves the
tools that do not: ``make invoke`` and the golden tests. GCP payloads are HTTP captures (see
``events/README.md``), AWS payloads are Lambda invoke payloads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.envelopes import aws, gcp
from shared.envelopes._common import to_mapping
from shared.envelopes.errors import MalformedEnvelope, UnsupportedEvent
from shared.events import HttpRequest, Job, ObjectCreated, ObjectDeleted, ScheduleTick

__all__ = ["Cloud", "DomainEvent", "HttpCapture", "domain_events"]

Cloud = Literal["aws", "gcp"]
DomainEvent = ObjectCreated | ObjectDeleted | Job | ScheduleTick | HttpRequest


@dataclass(frozen=True)
class HttpCapture:
    """An HTTP request as stored in ``events/gcp_*.json``."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> HttpCapture:
        body = doc.get("body", b"")
        if isinstance(body, Mapping | list):
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = bytes(body or b"")
        return cls(
            method=str(doc.get("method", "POST")).upper(),
            path=str(doc.get("path", "/")),
            query=str(doc.get("query", "")),
            headers={str(k): str(v) for k, v in (doc.get("headers") or {}).items()},
            body=raw,
        )


def domain_events(cloud: Cloud, payload: Mapping[str, Any]) -> list[DomainEvent]:
    """The domain events one delivery carries (an SQS batch or an S3 notification may carry several)."""
    if cloud == "gcp":
        return _gcp(HttpCapture.from_doc(payload))
    return _aws(payload)


def _gcp(req: HttpCapture) -> list[DomainEvent]:
    lower = {k.lower(): v for k, v in req.headers.items()}
    if gcp.is_scheduler_request(req.headers):
        return [gcp.schedule_tick_from_scheduler_http(req.headers)]
    if "ce-type" in lower or lower.get("content-type", "").startswith("application/cloudevents+json"):
        attrs, data = gcp.cloudevent_from_http(req.headers, req.body)
        if attrs.get("type") in (gcp.GCS_FINALIZED, gcp.GCS_DELETED):
            return [gcp.object_event_from_cloudevent(attrs, data)]
        if attrs.get("type") == gcp.PUBSUB_PUBLISHED:
            return [_from_pubsub(gcp.pubsub_from_cloudevent(attrs, data))]
        raise UnsupportedEvent(f"cloudevent type {attrs.get('type')!r} is not handled")
    if req.method == "POST" and req.body[:1] == b"{":
        try:
            doc = to_mapping(req.body, "http body")
        except MalformedEnvelope:
            doc = {}
        if "message" in doc and "subscription" in doc:
            return [_from_pubsub(gcp.pubsub_from_push(doc))]
    return [HttpRequest.from_parts(req.method, req.path, req.query, req.headers, req.body)]


def _from_pubsub(message: gcp.PubSubMessage) -> Job | ScheduleTick:
    # Scheduler messages are tagged by Terraform; anything else on a topic is a job.
    if "schedule" in message.attributes or b'"contentfn.scheduler"' in message.data:
        return gcp.schedule_tick_from_pubsub(message)
    return gcp.job_from_pubsub(message)


def _aws(event: Mapping[str, Any]) -> list[DomainEvent]:
    trigger = aws.trigger_of(event)
    if trigger == "s3":
        return list(aws.objects_from_s3_notification(event))
    if trigger == "eventbridge_s3":
        return [aws.object_from_eventbridge(event)]
    if trigger == "schedule":
        return [aws.schedule_tick_from_eventbridge(event)]
    if trigger == "http":
        return [aws.http_request_from_apigw_v2(event)]
    if trigger == "sqs":
        out: list[DomainEvent] = []
        for record in event["Records"]:
            body = to_mapping(record.get("body"), "sqs record body")
            if "Records" in body or body.get("Event") == "s3:TestEvent":
                out.extend(aws.objects_from_sqs_record(record))
            else:
                out.append(aws.job_from_sqs_record(record))
        return out
    raise UnsupportedEvent("payload is not a trigger this project handles")
