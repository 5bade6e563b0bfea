"""Job kinds and their payloads: one pydantic model per kind, the contract between producer and consumer.

Producers build jobs here (``EmbedPayload(...).to_job()`` or the ``embed_job`` shorthands) instead
of importing the consumer's module, so queuing an analyze job never imports the analyzers.
Consumers read them back with ``Model.from_job(job)`` or :func:`parse_payload`; a payload that
does not fit its model raises :class:`MalformedPayload` (a ``PoisonError``, so it is dead-lettered
at once) naming the kind and the field, never echoing the input. Each track job's dedup key pins
the content version: the same text is never queued twice for the same stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from shared.errors import PoisonError
from shared.events import Job
from shared.queue.base import NewJob

__all__ = [
    "ANALYZE_JOB",
    "DETECT_JOB",
    "EMBED_JOB",
    "ENRICH_JOB",
    "JOB_KINDS",
    "PAYLOADS",
    "TRACK_JOB_KINDS",
    "AnalyzePayload",
    "DetectPayload",
    "EmbedPayload",
    "EnrichPayload",
    "JobPayload",
    "MalformedPayload",
    "TrackPayload",
    "analyze_job",
    "embed_job",
    "enrich_job",
    "parse_payload",
    "track_jobs",
]

EMBED_JOB = "embed"
ENRICH_JOB = "enrich"
ANALYZE_JOB = "analyze"
DETECT_JOB = "detect"


# Payloads come from queues anyone with send rights can write to: the error names fields, never values,
# and a field name (an unexpected key is one) is cut short.
_MAX_ERRORS = 3
_MAX_LOC_CHARS = 60
_MAX_KIND_CHARS = 40


class MalformedPayload(PoisonError):
    """A job's payload does not fit its kind's model: it can never succeed."""


class JobPayload(BaseModel):
    """Base of every job payload: frozen, and unknown keys refused (a typo is an error, not a no-op)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]

    def dedup_key(self) -> str | None:
        return None

    def to_job(self, *, delay_s: float = 0.0) -> NewJob:
        """The one way in: the job to enqueue, with its dedup key."""
        payload = self.model_dump(mode="json", exclude_none=True)
        return NewJob(self.kind, payload, dedup_key=self.dedup_key(), delay_s=delay_s)

    @classmethod
    def from_job(cls, job: Job) -> Self:
        """The one way out: this kind's payload read from a delivered job, or ``MalformedPayload``."""
        if job.kind != cls.kind:
            raise MalformedPayload(f"job kind {_short(job.kind, _MAX_KIND_CHARS)!r} is not {cls.kind!r}")
        return cls._parse(job.payload)

    @classmethod
    def _parse(cls, payload: Any) -> Self:
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            raise MalformedPayload(f"malformed {cls.kind} job payload: {_describe(exc)}") from None


class TrackPayload(JobPayload):
    """A stage of one track. ``content_hash`` pins the dedup key to the text it was queued for;
    consumers read the track's current text, so a job sent without it (by hand, an older producer)
    is still valid work."""

    track_id: StrictInt
    content_hash: str | None = Field(default=None, min_length=1, max_length=128)

    def dedup_key(self) -> str | None:
        # PgQueue.enqueue_track_jobs builds the same payload and dedup key in SQL; a test holds them equal.
        if self.content_hash is None:
            return f"{self.kind}:{self.track_id}"
        return f"{self.kind}:{self.track_id}:{self.content_hash}"


class EmbedPayload(TrackPayload):
    kind: ClassVar[str] = EMBED_JOB


class EnrichPayload(TrackPayload):
    kind: ClassVar[str] = ENRICH_JOB


class AnalyzePayload(TrackPayload):
    kind: ClassVar[str] = ANALYZE_JOB


class DetectPayload(JobPayload):
    """One stored image for the GPU detector; keyed by content, so the same bytes are queued once."""

    kind: ClassVar[str] = DETECT_JOB

    image_id: StrictInt
    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    content_hash: str = Field(min_length=1, max_length=128)

    def dedup_key(self) -> str | None:
        return f"detect:{self.content_hash}"


# Every kind a consumer exists for. A new kind is added here with its model, or the contract tests fail.
PAYLOADS: Mapping[str, type[JobPayload]] = {
    m.kind: m for m in (EmbedPayload, EnrichPayload, AnalyzePayload, DetectPayload)
}
JOB_KINDS = tuple(PAYLOADS)

# What a new or changed track needs downstream: its vector and its enrichment (which queues analysis).
_TRACK_PAYLOADS: tuple[type[TrackPayload], ...] = (EmbedPayload, EnrichPayload)
TRACK_JOB_KINDS = tuple(m.kind for m in _TRACK_PAYLOADS)


def parse_payload(kind: str, payload: Any) -> JobPayload:
    """Read any kind's payload with its model; an unknown kind or a malformed payload is ``MalformedPayload``."""
    model = PAYLOADS.get(kind)
    if model is None:
        raise MalformedPayload(f"unknown job kind {_short(kind, _MAX_KIND_CHARS)!r}")
    return model._parse(payload)


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    parts = [f"{_short('.'.join(str(p) for p in e['loc']) or 'payload', _MAX_LOC_CHARS)}: {e['msg']}" for e in errors]
    more = f" (and {len(parts) - _MAX_ERRORS} more)" if len(parts) > _MAX_ERRORS else ""
    return "; ".join(parts[:_MAX_ERRORS]) + more


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def embed_job(track_id: int, chash: str) -> NewJob:
    return EmbedPayload(track_id=track_id, content_hash=chash).to_job()


def enrich_job(track_id: int, chash: str) -> NewJob:
    return EnrichPayload(track_id=track_id, content_hash=chash).to_job()


def analyze_job(track_id: int, chash: str) -> NewJob:
    return AnalyzePayload(track_id=track_id, content_hash=chash).to_job()


def track_jobs(track_id: int, chash: str) -> list[NewJob]:
    return [model(track_id=track_id, content_hash=chash).to_job() for model in _TRACK_PAYLOADS]
