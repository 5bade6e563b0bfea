"""What ingest answers for one object: a track file's counts, an image's row and job, or a refusal.

The report is also the object's idempotency record (a redelivery reads it back as the same type)
and its ledger detail, so it holds counts and names only, never file content.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["BadRowReport", "DeletionReport", "FileReport", "ImageReport", "IngestReport", "RejectedReport"]


class _Report(BaseModel):
    # Unknown keys refused: the three reports tell each other apart by their fields when read back.
    model_config = ConfigDict(frozen=True, extra="forbid")


class BadRowReport(_Report):
    line: int
    reason: str


class FileReport(_Report):
    """A track file parsed: good rows upserted and their jobs queued, bad rows counted (the first few listed)."""

    status: Literal["ok", "partial", "failed"]
    object: str
    generation: str | None
    format: str
    rows_ok: int
    rows_bad: int
    inserted: int
    updated: int
    unchanged: int
    embed_jobs: int
    jobs_queued: int
    bad_rows: list[BadRowReport]
    duration_ms: float


class ImageReport(_Report):
    """An image recorded (content-addressed); queued for detection unless known or refused by its header."""

    status: Literal["ok", "rejected"]
    object: str
    kind: Literal["image"] = "image"
    image_id: int
    content_hash: str
    new: bool
    queued: bool
    error: str | None = None
    admission: dict[str, Any] | None = None
    duration_ms: float


class RejectedReport(_Report):
    """An object refused before any row was written (wrong type, too large, unreadable); dead-lettered."""

    status: Literal["rejected"] = "rejected"
    object: str
    kind: Literal["file", "image"]
    # The refused version: a deletion of the version it replaced waits until this one is in the ledger.
    generation: str | None = None
    error: str
    duration_ms: float


IngestReport = FileReport | ImageReport | RejectedReport


class DeletionReport(_Report):
    """An object (one version, or every version when ``generation`` is None) deleted: its provenance
    links removed, and the tracks no other input feeds removed with their derived rows and queued jobs."""

    status: Literal["ok"] = "ok"
    object: str
    generation: str | None
    links: int
    tracks: int
    embeddings: int
    enrichments: int
    analyses: int
    jobs: int
    # The counts are whole; the ids are a sample, so that a large file's report stays small.
    track_ids: list[int]
    duration_ms: float
