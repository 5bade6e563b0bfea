"""Domain events: what every platform envelope is unwrapped into before the core sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field

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
    model_config = ConfigDict(frozen=True)

    status: int
    body: bytes = b""
    headers: dict[str, str] = Field(default_factory=dict)
