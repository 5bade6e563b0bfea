"""Counts over the whole store for ``/stats``: tracks, embeddings, pipeline stages, queue, dead jobs,
images, streams, live GPU workers and today's LLM spend.

Read in the caller's transaction, so one snapshot answers every count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg

from shared.store import ledger

__all__ = ["LlmBudgetDay", "LlmDay", "StoreStats", "read_stats"]


@dataclass(frozen=True)
class LlmBudgetDay:
    token_limit: int
    used: int
    reserved: int
    refused: int


@dataclass(frozen=True)
class LlmDay:
    calls: int
    ok: int
    tokens: int
    cost_usd: float
    budget: LlmBudgetDay | None


@dataclass(frozen=True)
class StoreStats:
    tracks: int
    embeddings: dict[str, int]  # model → vectors
    stages: dict[str, dict[str, int]]  # stage → status → count
    jobs: dict[str, int]  # kind → queued
    dead_jobs: dict[str, int]  # kind → dead
    images: dict[str, int]  # status → images
    streams: dict[str, int]  # status → streams
    gpu_workers: int
    llm_today: LlmDay


def read_stats(conn: psycopg.Connection[Any]) -> StoreStats:
    """Every count ``/stats`` reports; the caller owns the transaction."""
    llm = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'ok'), coalesce(sum(tokens_in + tokens_out), 0),"
        " coalesce(sum(cost_usd), 0) FROM llm_calls WHERE created_at >= date_trunc('day', now())"
    ).fetchone()
    budget = conn.execute(
        "SELECT token_limit, used, reserved, refused FROM llm_budget WHERE day = current_date"
    ).fetchone()
    calls, ok, tokens, cost = llm if llm else (0, 0, 0, 0)
    return StoreStats(
        tracks=_count(conn, "SELECT count(*) FROM tracks"),
        embeddings=_grouped(conn, "SELECT model, count(*) FROM embeddings GROUP BY model"),
        stages=ledger.stage_counts(conn),
        jobs=_grouped(conn, "SELECT kind, count(*) FROM jobs GROUP BY kind"),
        dead_jobs=_grouped(conn, "SELECT kind, count(*) FROM dead_jobs GROUP BY kind"),
        images=_grouped(conn, "SELECT status, count(*) FROM images GROUP BY status"),
        streams=_grouped(conn, "SELECT status, count(*) FROM streams GROUP BY status"),
        # A worker whose heartbeat is older than a minute no longer counts as running.
        gpu_workers=_count(conn, "SELECT count(*) FROM gpu_workers WHERE updated_at > now() - interval '60 seconds'"),
        llm_today=LlmDay(
            calls=int(calls),
            ok=int(ok),
            tokens=int(tokens),
            cost_usd=float(cost),
            budget=None if budget is None else LlmBudgetDay(*(int(v) for v in budget)),
        ),
    )


def _grouped(conn: psycopg.Connection[Any], query: LiteralString) -> dict[str, int]:
    return {str(key): int(n) for key, n in conn.execute(query).fetchall()}


def _count(conn: psycopg.Connection[Any], query: LiteralString) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0
