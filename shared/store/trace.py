"""Where is my file? One object's ingest outcome, then every track (or the image) it produced through
each downstream stage: done, pending (with the next attempt time when a job is queued here), or dead
(with the error and whether the job can be replayed).

Read from what the pipeline already records: the ``ledger`` (the object's ingest report with its bad
rows; ``track:<id>`` / ``image:<id>`` rows for each stage done), the ``jobs`` table (queued work, its
attempts, next visibility and last error) and ``dead_jobs`` (jobs that failed for good).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import psycopg

from shared.queue.dead import job_of
from shared.queue.kinds import ANALYZE_JOB, EMBED_JOB, ENRICH_JOB
from shared.vision.store import DETECT_JOB

__all__ = [
    "IMAGE_STAGES",
    "TRACK_STAGES",
    "ObjectTrace",
    "StageState",
    "SubjectTrace",
    "find_object_uris",
    "object_track_ids",
    "trace_object",
]

# Job kind → the ledger stage its consumer records when it is done, in pipeline order.
TRACK_STAGES: dict[str, str] = {EMBED_JOB: "embedded", ENRICH_JOB: "enriched", ANALYZE_JOB: "analyzed"}
IMAGE_STAGES: dict[str, str] = {DETECT_JOB: "detected"}

State = Literal["done", "pending", "dead", "rejected"]


@dataclass(frozen=True)
class StageState:
    """One stage of one track or image. ``next_attempt_at`` is set when a job is queued in Postgres;
    a job carried by a cloud queue (or not queued yet, as analyze before enrich) is pending without it."""

    state: State
    at: datetime | None = None  # when done / died
    attempts: int | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None
    dead_job_id: int | None = None
    retryable: bool | None = None  # the failure was transient (attempts used up), not poison
    replayable: bool | None = None  # the dead row holds a job that `dead replay` can queue again


@dataclass
class SubjectTrace:
    """One track (``id``, ``artist``, ``title``) or one image (``id``) and its stages by job kind."""

    kind: Literal["track", "image"]
    id: int
    label: str
    stages: dict[str, StageState] = field(default_factory=dict)


@dataclass
class ObjectTrace:
    uri: str
    ingest_status: str
    ingest_attempts: int
    ingest_error: str | None
    ingested_at: datetime | None
    report: dict[str, Any]  # the ingest report: rows ok/bad, the first bad rows with line and reason
    subjects: list[SubjectTrace]

    @property
    def summary(self) -> dict[str, dict[str, int]]:
        """Job kind → state → how many subjects are in it."""
        out: dict[str, dict[str, int]] = {}
        for subject in self.subjects:
            for kind, stage in subject.stages.items():
                counts = out.setdefault(kind, {})
                counts[stage.state] = counts.get(stage.state, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "object": self.uri,
            "ingest": {
                "status": self.ingest_status,
                "attempts": self.ingest_attempts,
                "error": self.ingest_error,
                "finished_at": self.ingested_at,
                "rows_ok": self.report.get("rows_ok"),
                "rows_bad": self.report.get("rows_bad"),
                "bad_rows": self.report.get("bad_rows", []),
            },
            "summary": self.summary,
            "subjects": [
                {
                    "kind": s.kind,
                    "id": s.id,
                    "label": s.label,
                    "stages": {k: asdict(v) for k, v in s.stages.items()},
                }
                for s in self.subjects
            ],
        }


def find_object_uris(conn: psycopg.Connection[Any], key: str, bucket: str | None = None) -> list[str]:
    """The ingested objects (``bucket/key``) with this key: one per bucket, or the one in ``bucket``."""
    if bucket is not None:
        rows = conn.execute(
            "SELECT subject FROM ledger WHERE subject = %s AND stage = 'ingested'", (f"object:{bucket}/{key}",)
        ).fetchall()
    else:
        # A bucket name has no '/', so the key is all that follows the first one.
        rows = conn.execute(
            "SELECT subject FROM ledger WHERE stage = 'ingested' AND subject LIKE 'object:%%'"
            " AND substr(subject, strpos(subject, '/') + 1) = %s ORDER BY subject",
            (key,),
        ).fetchall()
    return [str(r[0]).removeprefix("object:") for r in rows]


def object_track_ids(conn: psycopg.Connection[Any], uri: str) -> list[int]:
    """The tracks the latest ingested version of object ``uri`` holds.

    Ingest links every track of a file to the object version and line it came from, unchanged ones
    included (:mod:`shared.store.provenance`), so a re-upload that changed nothing still shows its
    tracks. The ledger's ingest row names the version last ingested; its ``generation`` is null where
    the version had neither generation nor ETag, which ingest keys as ``-``.
    """
    bucket, _, key = uri.partition("/")  # a bucket name has no '/'
    rows = conn.execute(
        """
        SELECT o.track_id FROM ledger l
        JOIN track_objects o
          ON o.bucket = %s AND o.object_key = %s AND o.version = coalesce(l.detail->>'generation', '-')
        JOIN tracks t ON t.id = o.track_id
        WHERE l.subject = %s AND l.stage = 'ingested'
        ORDER BY o.track_id
        """,
        (bucket, key, f"object:{uri}"),
    ).fetchall()
    return [int(r[0]) for r in rows]


def trace_object(conn: psycopg.Connection[Any], uri: str) -> ObjectTrace | None:
    """The whole trace of one ingested object, or None if it was never ingested."""
    row = conn.execute(
        "SELECT status, attempts, last_error, detail, finished_at FROM ledger WHERE subject = %s AND stage = 'ingested'",
        (f"object:{uri}",),
    ).fetchone()
    if row is None:
        return None
    status, attempts, error, report, finished_at = row
    report = dict(report or {})
    if report.get("kind") == "image":
        image_id = report.get("image_id")
        subjects = _images(conn, [int(image_id)]) if isinstance(image_id, int) else []
    else:
        subjects = _tracks(conn, object_track_ids(conn, uri))
    return ObjectTrace(uri, str(status), int(attempts), error, finished_at, report, subjects)


def _tracks(conn: psycopg.Connection[Any], ids: list[int]) -> list[SubjectTrace]:
    if not ids:
        return []
    rows = conn.execute("SELECT id, artist, title FROM tracks WHERE id = ANY(%s) ORDER BY id", (ids,)).fetchall()
    subjects = [SubjectTrace("track", int(i), f"{a} - {t}") for i, a, t in rows]
    _fill_stages(conn, subjects, "track", "track_id", TRACK_STAGES)
    return subjects


def _images(conn: psycopg.Connection[Any], ids: list[int]) -> list[SubjectTrace]:
    rows = conn.execute("SELECT id, key, status, reason FROM images WHERE id = ANY(%s)", (ids,)).fetchall()
    subjects = [SubjectTrace("image", int(i), str(key)) for i, key, _, _ in rows]
    _fill_stages(conn, subjects, "image", "image_id", IMAGE_STAGES)
    for subject, (_, _, status, reason) in zip(subjects, rows, strict=True):
        # An image refused before detection never gets a job: its row says why.
        if status == "rejected" and subject.stages[DETECT_JOB].state == "pending":
            subject.stages[DETECT_JOB] = StageState("rejected", error=reason)
    return subjects


def _fill_stages(
    conn: psycopg.Connection[Any], subjects: list[SubjectTrace], prefix: str, id_field: str, stages: dict[str, str]
) -> None:
    """Each subject's state per stage: a queued job wins (work is in flight), then the later of done
    (ledger) and dead (dead_jobs), else pending."""
    ids = [s.id for s in subjects]
    kinds = list(stages)
    queued: dict[tuple[str, int], tuple[int, datetime, str | None]] = {}
    for kind, sid, attempts, visible_at, error in conn.execute(
        f"SELECT kind, (payload->>'{id_field}')::bigint, attempts, visible_at, last_error FROM jobs"
        f" WHERE kind = ANY(%s) AND (payload->>'{id_field}')::bigint = ANY(%s)",
        (kinds, ids),
    ).fetchall():
        queued[(kind, int(sid))] = (int(attempts), visible_at, error)
    done: dict[tuple[str, int], tuple[datetime, int]] = {}
    stage_kind = {v: k for k, v in stages.items()}
    for subject, stage, finished_at, attempts in conn.execute(
        "SELECT subject, stage, finished_at, attempts FROM ledger WHERE stage = ANY(%s) AND status = 'ok'"
        " AND subject = ANY(%s)",
        (list(stages.values()), [f"{prefix}:{i}" for i in ids]),
    ).fetchall():
        done[(stage_kind[stage], int(subject.split(":", 1)[1]))] = (finished_at, int(attempts))
    dead = _dead(conn, kinds, id_field, ids)
    for s in subjects:
        for kind in kinds:
            key = (kind, s.id)
            if key in queued:
                attempts, visible_at, error = queued[key]
                s.stages[kind] = StageState("pending", attempts=attempts, next_attempt_at=visible_at, error=error)
                continue
            finished = done.get(key)
            died = dead.get(key)
            if died is not None and (finished is None or died.at is None or finished[0] < died.at):
                s.stages[kind] = died
            elif finished is not None:
                s.stages[kind] = StageState("done", at=finished[0], attempts=finished[1])
            else:
                s.stages[kind] = StageState("pending")


def _dead(
    conn: psycopg.Connection[Any], kinds: list[str], id_field: str, ids: list[int]
) -> dict[tuple[str, int], StageState]:
    """The latest dead job per (kind, subject): from the Postgres queue (its payload), or from a cloud
    queue's delivery (the job inside ``payload.envelope``)."""
    out: dict[tuple[str, int], StageState] = {}
    rows = conn.execute(
        f"""
        SELECT id, job_id, kind, payload, dedup_key, attempts, last_error, retryable, died_at, sid FROM (
            SELECT d.*, coalesce(d.payload->>'{id_field}', d.payload->'envelope'->'payload'->>'{id_field}') AS sid
            FROM dead_jobs d WHERE d.kind = ANY(%s)) x
        WHERE sid ~ '^[0-9]{{1,18}}$' AND sid::bigint = ANY(%s)
        ORDER BY died_at, id
        """,
        (kinds, ids),
    ).fetchall()
    for dead_id, job_id, kind, payload, dedup, attempts, error, retryable, died_at, sid in rows:
        held = {"job_id": job_id, "kind": kind, "payload": payload, "dedup_key": dedup}
        out[(kind, int(sid))] = StageState(
            "dead",
            at=died_at,
            attempts=int(attempts),
            error=error,
            dead_job_id=int(dead_id),
            retryable=bool(retryable),
            replayable=job_of(held) is not None,
        )
    return out
