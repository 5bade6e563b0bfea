"""The ledger: one row per (subject, stage) answering "where is my file / my track?"."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import psycopg

__all__ = ["LedgerStatus", "recent", "record", "record_many", "stage_counts"]

LedgerStatus = Literal["running", "ok", "partial", "failed", "rejected"]
_MAX_ERROR_CHARS = 2000


def record(
    conn: psycopg.Connection[Any],
    subject: str,
    stage: str,
    status: LedgerStatus,
    *,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
    duration_ms: float | None = None,
) -> None:
    """Upsert one ledger row; every new record for the same subject and stage counts an attempt."""
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO ledger (subject, stage, status, last_error, detail, duration_ms, finished_at)
            VALUES (%s, %s, %s, %s, %s::jsonb, %s, CASE WHEN %s = 'running' THEN NULL ELSE now() END)
            ON CONFLICT (subject, stage) DO UPDATE
            SET status = EXCLUDED.status, last_error = EXCLUDED.last_error, detail = EXCLUDED.detail,
                duration_ms = EXCLUDED.duration_ms, finished_at = EXCLUDED.finished_at,
                attempts = ledger.attempts + 1
            """,
            (
                subject,
                stage,
                status,
                None if error is None else error[:_MAX_ERROR_CHARS],
                json.dumps(detail or {}),
                duration_ms,
                status,
            ),
        )


def record_many(
    conn: psycopg.Connection[Any],
    subjects: Sequence[str],
    stage: str,
    status: LedgerStatus,
    duration_ms: float,
    *,
    detail: dict[str, Any] | None = None,
) -> None:
    """The same outcome for many subjects in one statement (a batch of embedded tracks). Without
    ``detail`` a row keeps the detail it had."""
    if not subjects:
        return
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO ledger (subject, stage, status, duration_ms, finished_at, detail)
            SELECT s, %(stage)s, %(status)s, %(ms)s, now(), coalesce(%(detail)s::jsonb, '{}'::jsonb)
            FROM unnest(%(subjects)s::text[]) AS s
            ON CONFLICT (subject, stage) DO UPDATE
            SET status = EXCLUDED.status, last_error = NULL, duration_ms = EXCLUDED.duration_ms,
                finished_at = EXCLUDED.finished_at, attempts = ledger.attempts + 1,
                detail = CASE WHEN %(detail)s::jsonb IS NULL THEN ledger.detail ELSE EXCLUDED.detail END
            """,
            {
                "stage": stage,
                "status": status,
                "ms": duration_ms,
                "detail": None if detail is None else json.dumps(detail),
                "subjects": list(subjects),
            },
        )


def stage_counts(conn: psycopg.Connection[Any]) -> dict[str, dict[str, int]]:
    """stage → status → count."""
    with conn.cursor() as cur:
        cur.execute("SELECT stage, status, count(*) FROM ledger GROUP BY stage, status ORDER BY stage, status")
        out: dict[str, dict[str, int]] = {}
        for stage, status, n in cur.fetchall():
            out.setdefault(stage, {})[status] = int(n)
    return out


def recent(conn: psycopg.Connection[Any], *, prefix: str = "object:", limit: int = 20) -> list[dict[str, Any]]:
    """The latest ledger rows whose subject starts with ``prefix`` (files by default)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT subject, stage, status, attempts, last_error, detail, started_at, finished_at, duration_ms"
            " FROM ledger WHERE subject LIKE %s ORDER BY coalesce(finished_at, started_at) DESC LIMIT %s",
            (prefix.replace("%", r"\%") + "%", limit),
        )
        cols = [d.name for d in cur.description or []]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
