"""Domain events: what every platform envelope is unwrapped into before the core sees it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

__all__ = ["HttpRequest", "HttpResponse", "Job", "ObjectCreated", "ObjectDeleted", "ObjectEvent", "ScheduleTick"]


class ObjectCreated(BaseModel):
    """A new object (or a new version of one) in a bucket."""

    model_config = ConfigDict(frozen=True)

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    size: int | None = Field(default=None, ge=0)
    generation: str | None = None  # GCS generation, S3 versionId, local mtime_ns
    etag: str | None = None
    content_type: str | None = None
    event_time: datetime | None = None

    @property
    def version(self) -> str:
        """What tells this version from others: generation, versionId or mtime, else the ETag."""
        return self.generation or self.etag or "-"

    @property
    def idempotency_key(self) -> str:
        """Same object version ⇒ same key, whichever platform delivered it and how often."""
        return f"object:{self.bucket}/{self.key}#{self.version}"

    @property
    def uri(self) -> str:
        return f"{self.bucket}/{self.key}"


class ObjectDeleted(BaseModel):
    """An object (one version of it, or the whole key) is gone from a bucket.

    ``generation`` names the version that went (a GCS generation deleted or overwritten, an S3
    version deleted for good); None means the key itself is gone, every version with it (an
    unversioned S3 delete, an S3 delete marker, a file removed from the local bucket folder).
    """

    model_config = ConfigDict(frozen=True)

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    generation: str | None = None
    event_time: datetime | None = None

    @property
    def uri(self) -> str:
        return f"{self.bucket}/{self.key}"


# What a storage trigger announces: an object version arrived, or one went.
ObjectEvent = ObjectCreated | ObjectDeleted


class Job(BaseModel):
    """A unit of queued work as the core sees it (kind + payload), whatever queue carried it."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int = 1
    dedup_key: str | None = None
    # W3C trace context of the span that queued it (shared.observability.traces): not part of the
    # payload, so neither dedup keys nor payload models see it.
    traceparent: str | None = None
    tracestate: str | None = None


class ScheduleTick(BaseModel):
    model_config = ConfigDict(frozen=True)

    schedule: str
    fired_at: datetime


class HttpRequest(BaseModel):
    """A framework-neutral HTTP request. Header names are lower-case."""

    model_config = ConfigDict(frozen=True)

    method: str
    path: str
    query: dict[str, list[str]] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def from_parts(
        cls, method: str, path: str, query_string: str = "", headers: dict[str, str] | None = None, body: bytes = b""
    ) -> HttpRequest:
        return cls(
            method=method.upper(),
            path=path or "/",
            query=parse_qs(query_string, keep_blank_values=True),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=body,
        )


class HttpResponse(BaseModel):
    """An answer: ``body`` whole, or ``stream`` — chunks produced while they are sent (an export),
    which each runtime passes on as they come (the local server, GCP) or buffers under a cap (AWS
    Lambda, whose buffered answers are size-limited). Close the stream when it is not sent."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    status: int
    body: bytes = b""
    headers: dict[str, str] = Field(default_factory=dict)
    # Not validated: pydantic would wrap the iterator and hide its close(), which frees a database cursor.
    stream: SkipValidation[Iterator[bytes] | None] = Field(default=None, exclude=True, repr=False)

    def buffered(self, max_bytes: int) -> bytes | None:
        """The whole body, reading the stream when there is one; None (stream closed) past ``max_bytes``."""
        if self.stream is None:
            return self.body
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in self.stream:
                size += len(chunk)
                if size > max_bytes:
                    return None
                parts.append(chunk)
        finally:
            close = getattr(self.stream, "close", None)
            if close is not None:
                close()
        return b"".join(parts)
