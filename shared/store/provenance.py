"""Provenance: which object versions and scraped pages each track came from, and the deletions it
makes exact — an input's deletion removes the tracks that no other input still feeds.

Object links are written by :func:`shared.store.tracks.upsert_tracks` (inside its upsert statement);
page links by :func:`link_pages`. Both run in the caller's transaction, beside the tracks they name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict

from shared.queue.kinds import PAYLOADS, TrackPayload
from shared.store import ledger

# The ledger stage of a removal: on the object deleted, and on each track it took with it.
DELETED_STAGE = "deleted"

# Every job kind whose payload names one track: a deleted track's queued work of these kinds goes with it.
_TRACK_JOB_KINDS = tuple(kind for kind, model in PAYLOADS.items() if issubclass(model, TrackPayload))

__all__ = [
    "DELETED_STAGE",
    "ObjectLink",
    "ObjectVersion",
    "PageLink",
    "Provenance",
    "Removal",
    "delete_tracks",
    "link_pages",
    "provenance_of",
    "record_removed",
    "unlink_object",
]


@dataclass(frozen=True)
class ObjectVersion:
    """One version of one object: ``version`` is the value that keys its ingest (generation, versionId…)."""

    bucket: str
    key: str
    version: str


class _Answer(BaseModel):
    # Served by the API as they are: a key the model does not declare is refused, not published undocumented.
    model_config = ConfigDict(extra="forbid")


class ObjectLink(_Answer):
    bucket: str
    key: str
    version: str
    line: int | None
    linked_at: datetime


class PageLink(_Answer):
    url: str
    source: str
    linked_at: datetime


class Provenance(_Answer):
    objects: list[ObjectLink]
    pages: list[PageLink]


class Removal(_Answer):
    """What one deletion removed: links, then the tracks left without any input and their derived rows."""

    links: int = 0
    tracks: int = 0
    embeddings: int = 0
    enrichments: int = 0
    analyses: int = 0
    jobs: int = 0
    track_ids: list[int] = []


def link_pages(conn: psycopg.Connection[Any], links: Sequence[tuple[str, str, str, str]]) -> int:
    """Link tracks to the pages they were read from, in one statement.

    ``links`` are (source, source_id, content_hash, url). The track is the one stored under
    (source, source_id); an item dropped as a duplicate of stored content (another source's copy
    of the song) has none, so it links to the track holding that content. Returns links added.
    """
    if not links:
        return 0
    sources, ids, hashes, urls = (list(col) for col in zip(*links, strict=True))
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO track_pages (track_id, url, source)
            SELECT DISTINCT track_id, url, source FROM (
                SELECT coalesce(
                           (SELECT t.id FROM tracks t WHERE t.source = u.source AND t.source_id = u.source_id),
                           (SELECT min(t.id) FROM tracks t WHERE t.content_hash = u.hash)) AS track_id,
                       u.url, u.source
                FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS u(source, source_id, hash, url)
            ) found
            -- an item whose track another transaction removed meanwhile has none: nothing to link
            WHERE track_id IS NOT NULL
            ON CONFLICT DO NOTHING
            """,
            (sources, ids, hashes, urls),
        )
        return cur.rowcount


def provenance_of(conn: psycopg.Connection[Any], track_id: int) -> Provenance:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT bucket, object_key, version, line, linked_at FROM track_objects WHERE track_id = %s"
            " ORDER BY linked_at, bucket, object_key, version",
            (track_id,),
        )
        objects = [ObjectLink(bucket=b, key=k, version=v, line=n, linked_at=at) for b, k, v, n, at in cur.fetchall()]
        cur.execute(
            "SELECT url, source, linked_at FROM track_pages WHERE track_id = %s ORDER BY linked_at, url", (track_id,)
        )
        pages = [PageLink(url=u, source=s, linked_at=at) for u, s, at in cur.fetchall()]
    return Provenance(objects=objects, pages=pages)


def unlink_object(conn: psycopg.Connection[Any], bucket: str, key: str, version: str | None) -> Removal:
    """Forget one object (one version of it, or every version when ``version`` is None), then delete
    the tracks it alone fed. A track another object or a scraped page still feeds stays.

    Idempotent: a second call finds no links and removes nothing. Serialised per object (an
    advisory lock) so two deliveries of one deletion do not race each other.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"object:{bucket}/{key}",))
        cur.execute(
            "DELETE FROM track_objects WHERE bucket = %s AND object_key = %s AND (%s::text IS NULL OR version = %s)"
            " RETURNING track_id",
            (bucket, key, version, version),
        )
        unlinked = [int(r[0]) for r in cur.fetchall()]
        cur.execute(
            """
            SELECT t.id FROM tracks t
            WHERE t.id = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM track_objects o WHERE o.track_id = t.id)
              AND NOT EXISTS (SELECT 1 FROM track_pages p WHERE p.track_id = t.id)
            ORDER BY t.id
            """,
            (sorted(set(unlinked)),),
        )
        orphans = [int(r[0]) for r in cur.fetchall()]
    removal = delete_tracks(conn, orphans)
    removal.links = len(unlinked)
    return removal


def delete_tracks(conn: psycopg.Connection[Any], track_ids: Sequence[int]) -> Removal:
    """Delete tracks with everything derived from them (embeddings, enrichments, analyses and page
    links go by ``ON DELETE CASCADE``, counted first; object links and queued jobs explicitly).
    Ids already gone are skipped."""
    if not track_ids:
        return Removal()
    ids = list(track_ids)
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT (SELECT count(*) FROM embeddings WHERE track_id = ANY(%(ids)s)),
                   (SELECT count(*) FROM enrichments WHERE track_id = ANY(%(ids)s)),
                   (SELECT count(*) FROM analyses WHERE track_id = ANY(%(ids)s))
            """,
            {"ids": ids},
        )
        counts = cur.fetchone()
        # track_objects has no foreign key (see 0005_provenance.sql): its rows go here, explicitly.
        cur.execute(
            "WITH gone AS (DELETE FROM tracks WHERE id = ANY(%(ids)s) RETURNING id),"
            " unlinked AS (DELETE FROM track_objects WHERE track_id = ANY(%(ids)s))"
            " SELECT id FROM gone",
            {"ids": ids},
        )
        deleted = sorted(int(r[0]) for r in cur.fetchall())
        # Their queued work would only fail as "track not found" and fill the dead-letter store. A
        # job a worker holds right now goes too: its ack or retry then matches no row, harmlessly.
        cur.execute(
            "DELETE FROM jobs WHERE kind = ANY(%s) AND payload->>'track_id' = ANY(%s)",
            (list(_TRACK_JOB_KINDS), [str(i) for i in deleted]),
        )
        jobs = cur.rowcount
    embeddings, enrichments, analyses = (int(n) for n in counts) if counts else (0, 0, 0)
    return Removal(
        tracks=len(deleted),
        embeddings=embeddings,
        enrichments=enrichments,
        analyses=analyses,
        jobs=jobs,
        track_ids=deleted,
    )


def record_removed(conn: psycopg.Connection[Any], removal: Removal, *, cause: str, duration_ms: float) -> None:
    """A ``deleted`` ledger row for each removed track, naming what removed it (an object or a request)."""
    subjects = [f"track:{track_id}" for track_id in removal.track_ids]
    ledger.record_many(conn, subjects, DELETED_STAGE, "ok", duration_ms, detail={"cause": cause})
