"""Job kinds and constructors, in one place for every producer.

Producers (ingest, scrape, enrich) build downstream jobs here instead of importing the consumer's
module, so queuing an analyze job never imports the analyzers. Each dedup key pins the content
version: the same text is never queued twice for the same stage.
"""

from __future__ import annotations

from shared.queue.base import NewJob

__all__ = [
    "ANALYZE_JOB",
    "EMBED_JOB",
    "ENRICH_JOB",
    "TRACK_JOB_KINDS",
    "analyze_job",
    "embed_job",
    "enrich_job",
    "track_jobs",
]

EMBED_JOB = "embed"
ENRICH_JOB = "enrich"
ANALYZE_JOB = "analyze"


# What a new or changed track needs downstream: its vector and its enrichment (which queues analysis).
TRACK_JOB_KINDS = (EMBED_JOB, ENRICH_JOB)


def _track_job(kind: str, track_id: int, chash: str) -> NewJob:
    # PgQueue.enqueue_track_jobs builds the same payload and dedup key in SQL; a test holds them equal.
    return NewJob(kind, {"track_id": track_id, "content_hash": chash}, dedup_key=f"{kind}:{track_id}:{chash}")


def embed_job(track_id: int, chash: str) -> NewJob:
    return _track_job(EMBED_JOB, track_id, chash)


def enrich_job(track_id: int, chash: str) -> NewJob:
    return _track_job(ENRICH_JOB, track_id, chash)


def analyze_job(track_id: int, chash: str) -> NewJob:
    return _track_job(ANALYZE_JOB, track_id, chash)


def track_jobs(track_id: int, chash: str) -> list[NewJob]:
    return [_track_job(kind, track_id, chash) for kind in TRACK_JOB_KINDS]
