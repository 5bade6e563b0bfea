"""The dead-letter store: look at what failed for good, replay it once fixed, purge what is not wanted.

``dead_jobs`` holds two sorts of rows. Jobs that failed for good: poison, or attempts used up (from
the Postgres queue, with ``job_id``; from a cloud queue's delivery, with the job inside
``payload.envelope``). And events that never became jobs: a refused upload, an envelope that could
not be parsed. Only the first sort can be replayed: the job goes back to the ``jobs`` table with
fresh attempts, in the same transaction that deletes its dead row, where the local workers claim it
and, on a cloud, the next outbox relay of its kind forwards it to the kind's queue. The second sort
is fixed at its source (upload the object again).

A replayed job whose dedup key is already queued is not queued twice: its dead row is removed,
since that job will do the same work.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from shared.queue.base import NewJob
from shared.queue.kinds import JOB_KINDS

__all__ = [
    "REPLAYABLE_KINDS",
    "ReplayReport",
    "dead_job",
    "dead_jobs",
    "job_of",
    "purge_dead",
    "replay_dead",
]

# Job kinds a queue consumer exists for: those with a payload model.
REPLAYABLE_KINDS = JOB_KINDS
NOT_A_JOB = "not a queued job (an event or an unreadable delivery): fix it at its source, e.g. upload the object again"

_COLUMNS = "id, job_id, kind, payload, dedup_key, attempts, last_error, retryable, created_at, died_at"


@dataclass
class ReplayReport:
    replayed: list[int] = field(default_factory=list)
    already_queued: list[int] = field(default_factory=list)
    not_replayable: dict[int, str] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)  # replayed per job kind

    def as_dict(self) -> dict[str, Any]:
        return {
            "replayed": self.replayed,
            "already_queued": self.already_queued,
            "not_replayable": {str(k): v for k, v in self.not_replayable.items()},
            "kinds": self.kinds,
        }


def job_of(row: dict[str, Any]) -> NewJob | None:
    """The job a dead row held, or None for an event record (nothing to replay)."""
    if row["job_id"] is not None:
        job = NewJob(row["kind"], row["payload"], row["dedup_key"])
    else:
        envelope = (row["payload"] or {}).get("envelope")
        if not isinstance(envelope, dict):
            return None
        kind, payload, dedup = envelope.get("kind"), envelope.get("payload"), envelope.get("dedup_key")
        if not isinstance(kind, str) or not isinstance(payload, dict) or not isinstance(dedup, str | None):
            return None
        job = NewJob(kind, payload, dedup)
    return job if job.kind in REPLAYABLE_KINDS else None


def _row(values: Sequence[Any]) -> dict[str, Any]:
    names = [c.strip() for c in _COLUMNS.split(",")]
    row = dict(zip(names, values, strict=True))
    for stamp in ("created_at", "died_at"):
        row[stamp] = row[stamp].isoformat()
    row["replayable"] = job_of(row) is not None
    return row


def dead_jobs(
    conn: psycopg.Connection[Any], *, kind: str | None = None, before: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Newest first; page with ``before`` = the smallest id of the previous page."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM dead_jobs"
        " WHERE (%(kind)s::text IS NULL OR kind = %(kind)s) AND (%(before)s::bigint IS NULL OR id < %(before)s)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"kind": kind, "before": before, "limit": limit},
    ).fetchall()
    return [_row(r) for r in rows]


def dead_job(conn: psycopg.Connection[Any], dead_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM dead_jobs WHERE id = %s", (dead_id,)).fetchone()
    return _row(row) if row else None


def replay_dead(
    conn: psycopg.Connection[Any],
    *,
    ids: Sequence[int] = (),
    kind: str | None = None,
    limit: int = 1000,
    max_attempts: int,
) -> ReplayReport:
    """Queue the jobs of the chosen dead rows again (by id, or the oldest ``limit`` jobs of a kind).

    Runs in the caller's transaction; rows another replay holds are skipped (SKIP LOCKED), so two
    operators replaying at once never queue a job twice.
    """
    if bool(ids) == (kind is not None):
        raise ValueError("name the dead jobs to replay: ids, or a kind (not both)")
    if ids:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM dead_jobs WHERE id = ANY(%s) ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (list(ids), limit),
        ).fetchall()
    else:
        # Only rows that hold a job: events of the kind never fill the limit and block the rest.
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM dead_jobs WHERE kind = %s"
            " AND (job_id IS NOT NULL OR jsonb_typeof(payload -> 'envelope') = 'object')"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (kind, limit),
        ).fetchall()
    report = ReplayReport()
    done: list[int] = []
    for values in rows:
        row = _row(values)
        job = job_of(row)
        if job is None:
            if ids:  # named by id: say why it stays; a kind selection passes over it
                report.not_replayable[row["id"]] = NOT_A_JOB
            continue
        inserted = conn.execute(
            "INSERT INTO jobs (kind, payload, dedup_key, max_attempts) VALUES (%s, %s::jsonb, %s, %s)"
            " ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            (job.kind, json.dumps(job.payload), job.dedup_key, max_attempts),
        ).fetchone()
        if inserted:
            report.replayed.append(row["id"])
            report.kinds[job.kind] = report.kinds.get(job.kind, 0) + 1
        else:
            report.already_queued.append(row["id"])
        done.append(row["id"])
    if done:
        conn.execute("DELETE FROM dead_jobs WHERE id = ANY(%s)", (done,))
    missing = sorted(set(ids) - {r[0] for r in rows})
    for dead_id in missing:
        report.not_replayable[dead_id] = "no such dead job (or another replay holds it)"
    return report


def purge_dead(
    conn: psycopg.Connection[Any],
    *,
    ids: Sequence[int] = (),
    kind: str | None = None,
    older_than_s: float | None = None,
) -> int:
    """Delete dead rows by id, or by kind and/or age; returns how many went."""
    if not ids and kind is None and older_than_s is None:
        raise ValueError("name the dead jobs to purge: ids, a kind or an age")
    deleted = conn.execute(
        "DELETE FROM dead_jobs"
        " WHERE (cardinality(%(ids)s::bigint[]) = 0 OR id = ANY(%(ids)s)) AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
        " AND (%(age)s::float8 IS NULL OR died_at < now() - make_interval(secs => %(age)s))",
        {"ids": list(ids), "kind": kind, "age": older_than_s},
    )
    return deleted.rowcount
