"""Small helpers shared by the AWS and GCP envelope parsers."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from shared.envelopes.errors import MalformedEnvelope
from shared.events import Job

__all__ = ["MAX_HTTP_BODY_BYTES", "dig", "job_from_body", "parse_time", "to_mapping"]

# The API never needs large bodies; refusing early keeps a hostile request from costing memory.
MAX_HTTP_BODY_BYTES = 1024 * 1024

_FRACTION = re.compile(r"(\.\d{6})\d+")


def dig(doc: Any, *path: str | int, what: str) -> Any:
    """``doc[path0][path1]…`` or MalformedEnvelope naming the missing field (never its value)."""
    node = doc
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            dotted = ".".join(str(p) for p in path)
            raise MalformedEnvelope(f"{what}: missing field {dotted}") from None
    return node


def to_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if isinstance(value, bytes | bytearray):
        value = value.decode("utf-8", errors="strict") if value else ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise MalformedEnvelope(f"{what}: body is not JSON") from None
    if not isinstance(value, Mapping):
        raise MalformedEnvelope(f"{what}: expected a JSON object")
    return value


def parse_time(value: Any, what: str) -> datetime | None:
    """RFC 3339 / ISO 8601 (nanosecond fractions cut to microseconds), or epoch seconds/milliseconds."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=UTC)
        text = _FRACTION.sub(r"\1", str(value))
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError, OverflowError):
        raise MalformedEnvelope(f"{what}: time is not RFC 3339") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def job_from_body(
    body: Any, *, message_id: str, attempts: int, attributes: Mapping[str, str] | None = None, what: str
) -> Job:
    """A job message body ``{"kind", "payload", "dedup_key"?}``; ``kind``/``dedup_key`` may come as attributes."""
    doc = to_mapping(body, what)
    attrs = attributes or {}
    kind = doc.get("kind") or attrs.get("kind")
    if not isinstance(kind, str) or not kind:
        raise MalformedEnvelope(f"{what}: job message lacks a kind")
    try:
        return Job(
            id=message_id,
            kind=kind,
            payload=doc["payload"],
            attempts=max(1, attempts),
            dedup_key=doc.get("dedup_key") or attrs.get("dedup_key"),
            # Anyone with send rights writes these: one that is too long is dropped, never poison.
            traceparent=_bounded(attrs.get("traceparent"), _MAX_TRACEPARENT),
            tracestate=_bounded(attrs.get("tracestate"), _MAX_TRACESTATE),
        )
    except KeyError:
        raise MalformedEnvelope(f"{what}: job message lacks a payload") from None
    except ValidationError as exc:
        fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
        raise MalformedEnvelope(f"{what}: invalid job message ({fields})") from None


_MAX_TRACEPARENT = 128
_MAX_TRACESTATE = 512


def _bounded(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None
