"""Postgres as the queue: claim with ``FOR UPDATE SKIP LOCKED`` under a lease.

Why Postgres: the jobs live beside the data they describe, so a function can write its results and
ack its jobs in one transaction — a crash either keeps both or neither, and nothing is done twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from shared.events import Job
from shared.observability.traces import trace_context
from shared.queue.base import ClaimedJob, FailOutcome, NewJob, backoff_delay
from shared.store.db import Database

__all__ = ["PgQueue"]

_MAX_ERROR_CHARS = 2000


class PgQueue:
    def __init__(
        self,
        db: Database,
        *,
        visibility_s: float = 120.0,
        max_attempts: int = 5,
        backoff_base_s: float = 2.0,
        backoff_cap_s: float = 300.0,
    ) -> None:
        self.db = db
        self.visibility_s = visibility_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s

    # -- producing ---------------------------------------------------------------------------
    def enqueue_many(self, jobs: Sequence[NewJob], *, conn: psycopg.Connection[Any] | None = None) -> int:
        """Insert jobs, skipping any whose dedup key is already queued.

        Pass ``conn`` to enqueue inside the caller's transaction (transactional outbox): the jobs
        exist if and only if the rows that caused them were committed.
        """
        if not jobs:
            return 0
        if conn is None:
            with self.db.connection() as own:
                added = self._insert(own, jobs)
                own.commit()
                return added
        return self._insert(conn, jobs)

    def _insert(self, conn: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> int:
        parent, state = trace_context()
        with conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO jobs (kind, payload, dedup_key, max_attempts, visible_at, traceparent, tracestate)
                SELECT k, p::jsonb, d, %s, now() + make_interval(secs => s), tp, ts
                FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::text[], %s::text[])
                    AS u(k, p, d, s, tp, ts)
                ON CONFLICT (dedup_key) DO NOTHING
                """,
                (
                    self.max_attempts,
                    [j.kind for j in jobs],
                    [json.dumps(j.payload) for j in jobs],
                    [j.dedup_key for j in jobs],
                    [j.delay_s for j in jobs],
                    [j.traceparent or parent for j in jobs],
                    [j.tracestate if j.traceparent else state for j in jobs],
                ),
            )
            return cur.rowcount

    def enqueue_track_jobs(
        self,
        kinds: Sequence[str],
        track_ids: Sequence[int],
        content_hashes: Sequence[str],
        *,
        conn: psycopg.Connection[Any],
    ) -> int:
        """One job of each kind per (track, content hash), built in the database.

        Same payload and dedup key as :func:`shared.queue.kinds.embed_job` and its siblings, but without a
        Python object and a JSON document per job: a 57,718-row upload queues its 115,436 jobs in
        one statement. Runs inside the caller's transaction.
        """
        if not track_ids or not kinds:
            return 0
        parent, state = trace_context()
        with conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO jobs (kind, payload, dedup_key, max_attempts, traceparent, tracestate)
                SELECT k.kind, jsonb_build_object('track_id', t.id, 'content_hash', t.h),
                       k.kind || ':' || t.id || ':' || t.h, %s, %s, %s
                FROM unnest(%s::bigint[], %s::text[]) AS t(id, h)
                CROSS JOIN unnest(%s::text[]) WITH ORDINALITY AS k(kind, n)
                ORDER BY k.n, t.id
                ON CONFLICT (dedup_key) DO NOTHING
                """,
                (self.max_attempts, parent, state, list(track_ids), list(content_hashes), list(kinds)),
            )
            return cur.rowcount

    def enqueue(self, kind: str, payload: dict[str, Any], *, dedup_key: str | None = None) -> bool:
        return self.enqueue_many([NewJob(kind, payload, dedup_key)]) == 1

    # -- consuming ---------------------------------------------------------------------------
    def claim(self, kind: str, limit: int, *, visibility_s: float | None = None) -> list[ClaimedJob]:
        """Claim up to ``limit`` visible jobs of one kind for ``visibility_s`` seconds.

        Jobs whose lease ran out after their last allowed attempt (the worker died every time)
        are moved to the dead-letter table here instead of being handed out again.
        """
        vis = self.visibility_s if visibility_s is None else visibility_s
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                """
                WITH exhausted AS (
                    DELETE FROM jobs WHERE id IN (
                        SELECT id FROM jobs
                        WHERE kind = %(kind)s AND visible_at <= now() AND attempts >= max_attempts
                        FOR UPDATE SKIP LOCKED)
                    RETURNING *)
                INSERT INTO dead_jobs (job_id, kind, payload, dedup_key, attempts, last_error, retryable, created_at)
                SELECT id, kind, payload, dedup_key, attempts,
                       coalesce(last_error, 'lease expired') || ' (attempts exhausted)', true, created_at
                FROM exhausted
                """,
                {"kind": kind},
            )
            cur.execute(
                """
                WITH picked AS (
                    SELECT id FROM jobs
                    WHERE kind = %(kind)s AND visible_at <= now() AND attempts < max_attempts
                    ORDER BY visible_at, id
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED)
                UPDATE jobs j
                SET attempts = j.attempts + 1,
                    visible_at = now() + make_interval(secs => %(vis)s),
                    lease_id = gen_random_uuid()
                FROM picked WHERE j.id = picked.id
                RETURNING j.id, j.kind, j.payload, j.attempts, j.dedup_key, j.lease_id, j.traceparent, j.tracestate
                """,
                {"kind": kind, "limit": limit, "vis": vis},
            )
            rows = cur.fetchall()
            conn.commit()
        rows.sort(key=lambda r: r[0])
        return [
            ClaimedJob(
                job=Job(
                    id=str(r[0]),
                    kind=r[1],
                    payload=r[2],
                    attempts=r[3],
                    dedup_key=r[4],
                    traceparent=r[6],
                    tracestate=r[7],
                ),
                lease_id=str(r[5]),
            )
            for r in rows
        ]

    def ack(self, claimed: Sequence[ClaimedJob], *, conn: psycopg.Connection[Any] | None = None) -> int:
        """Delete finished jobs. Pass ``conn`` to ack in the same transaction as the results."""
        if not claimed:
            return 0
        sql = "DELETE FROM jobs WHERE (id, lease_id) IN (SELECT * FROM unnest(%s::bigint[], %s::uuid[]))"
        params = ([int(c.id) for c in claimed], [c.lease_id for c in claimed])
        if conn is None:
            with self.db.connection() as own, own.cursor() as cur:
                cur.execute(sql, params)
                own.commit()
                return cur.rowcount
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    def fail(self, claimed: ClaimedJob, error: str, *, retryable: bool) -> FailOutcome:
        """Record a failure: retry later with backoff, or dead-letter (poison, or attempts used up)."""
        error = error[:_MAX_ERROR_CHARS]
        attempts = claimed.job.attempts
        dead = (not retryable) or attempts >= self.max_attempts
        with self.db.connection() as conn, conn.cursor() as cur:
            if dead:
                cur.execute(
                    """
                    WITH gone AS (DELETE FROM jobs WHERE id = %s AND lease_id = %s RETURNING *)
                    INSERT INTO dead_jobs (job_id, kind, payload, dedup_key, attempts, last_error, retryable, created_at)
                    SELECT id, kind, payload, dedup_key, attempts, %s, %s, created_at FROM gone
                    """,
                    (int(claimed.id), claimed.lease_id, error, retryable),
                )
            else:
                delay = backoff_delay(attempts, self.backoff_base_s, self.backoff_cap_s)
                cur.execute(
                    """
                    UPDATE jobs SET visible_at = now() + make_interval(secs => %s), last_error = %s, lease_id = NULL
                    WHERE id = %s AND lease_id = %s
                    """,
                    (delay, error, int(claimed.id), claimed.lease_id),
                )
            conn.commit()
        return "dead" if dead else "retry"

    def release(self, claimed: Sequence[ClaimedJob]) -> int:
        if not claimed:
            return 0
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                """
                UPDATE jobs SET visible_at = now(), lease_id = NULL, attempts = greatest(attempts - 1, 0)
                WHERE (id, lease_id) IN (SELECT * FROM unnest(%s::bigint[], %s::uuid[]))
                """,
                ([int(c.id) for c in claimed], [c.lease_id for c in claimed]),
            )
            conn.commit()
            return cur.rowcount

    def dead_letter(
        self, kind: str, payload: dict[str, Any], error: str, *, dedup_key: str | None = None, attempts: int = 1
    ) -> None:
        """Record input that never was a queued job and failed for good (e.g. a refused upload event).

        ``attempts``: how often it was tried; more than one for an event retried until given up.
        """
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO dead_jobs (job_id, kind, payload, dedup_key, attempts, last_error, retryable, created_at)
                VALUES (NULL, %s, %s::jsonb, %s, %s, %s, false, now())
                """,
                (kind, json.dumps(payload), dedup_key, attempts, error[:_MAX_ERROR_CHARS]),
            )
            conn.commit()

    # -- observing ---------------------------------------------------------------------------
    def has_ready(self, kind: str) -> bool:
        """Whether a job of ``kind`` is waiting to be claimed now (an index probe, not a count)."""
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = %s AND visible_at <= now())", (kind,))
            row = cur.fetchone()
            conn.commit()
        return bool(row and row[0])

    def backlog(self, kind: str, cap: int) -> int:
        """Jobs of ``kind`` waiting (ready or leased), counted up to ``cap``: cheap on a deep queue."""
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM (SELECT 1 FROM jobs WHERE kind = %s LIMIT %s) AS j", (kind, cap))
            row = cur.fetchone()
            conn.commit()
        return int(row[0]) if row else 0

    def depth(self, kind: str | None = None) -> int:
        return self._count("jobs", kind)

    def dead_count(self, kind: str | None = None) -> int:
        return self._count("dead_jobs", kind)

    def _count(self, table: str, kind: str | None) -> int:
        where = "" if kind is None else " WHERE kind = %s"
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}{where}", () if kind is None else (kind,))
            row = cur.fetchone()
            conn.commit()
        return int(row[0]) if row else 0

    def dead_jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id, job_id, kind, payload, attempts, last_error, retryable, died_at FROM dead_jobs"
                " ORDER BY died_at DESC LIMIT %s",
                (limit,),
            )
            cols = [d.name for d in cur.description or []]
            rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
            conn.commit()
        return rows
