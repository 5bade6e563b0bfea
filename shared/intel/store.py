"""Reads and writes of the content-intelligence tables (0002_analysis.sql)."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from shared.intel.profile import Analysis

__all__ = [
    "get_analysis",
    "get_enrichment",
    "latest_embedding",
    "llm_labels",
    "record_llm_call",
    "save_analysis",
    "upsert_enrichment",
]


def save_analysis(conn: psycopg.Connection[Any], track_id: int, analysis: Analysis) -> None:
    """Insert once per (track, analyzer, prompt version, content hash); a repeat changes nothing."""
    conn.execute(
        """
        INSERT INTO analyses (track_id, analyzer, prompt_version, content_hash, result, confidence, fallback,
                              tokens_in, tokens_out, cost_usd)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (track_id, analyzer, prompt_version, content_hash) DO NOTHING
        """,
        (
            track_id,
            analysis.analyzer,
            analysis.prompt_version,
            analysis.content_hash,
            Jsonb(analysis.model_dump(mode="json")),
            analysis.confidence,
            analysis.fallback,
            analysis.cost.tokens_in,
            analysis.cost.tokens_out,
            analysis.cost.usd,
        ),
    )


def get_analysis(
    conn: psycopg.Connection[Any], track_id: int, analyzer: str, prompt_version: str, content_hash: str
) -> Analysis | None:
    row = conn.execute(
        "SELECT result FROM analyses WHERE track_id = %s AND analyzer = %s AND prompt_version = %s"
        " AND content_hash = %s",
        (track_id, analyzer, prompt_version, content_hash),
    ).fetchone()
    return None if row is None else Analysis.model_validate(row[0])


def record_llm_call(
    conn: psycopg.Connection[Any],
    *,
    subject: str,
    analyzer: str,
    prompt_version: str,
    content_hash: str,
    outcome: str,
    tokens_in: int,
    tokens_out: int,
    cost_usd: float,
    duration_ms: float,
) -> None:
    conn.execute(
        """
        INSERT INTO llm_calls (subject, analyzer, prompt_version, content_hash, outcome, tokens_in, tokens_out,
                               cost_usd, duration_ms)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (subject, analyzer, prompt_version, content_hash, outcome, tokens_in, tokens_out, cost_usd, duration_ms),
    )


def upsert_enrichment(
    conn: psycopg.Connection[Any], track_id: int, kind: str, version: str, content_hash: str, data: dict[str, Any]
) -> bool:
    """Write one enrichment; returns False when the same version for the same text was already there."""
    cur = conn.execute(
        """
        INSERT INTO enrichments (track_id, kind, version, content_hash, data) VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (track_id, kind) DO UPDATE
        SET version = EXCLUDED.version, content_hash = EXCLUDED.content_hash, data = EXCLUDED.data, updated_at = now()
        WHERE enrichments.version IS DISTINCT FROM EXCLUDED.version
           OR enrichments.content_hash IS DISTINCT FROM EXCLUDED.content_hash
           OR enrichments.data IS DISTINCT FROM EXCLUDED.data
        """,
        (track_id, kind, version, content_hash, Jsonb(data)),
    )
    return cur.rowcount == 1


def get_enrichment(conn: psycopg.Connection[Any], track_id: int, kind: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT version, content_hash, data FROM enrichments WHERE track_id = %s AND kind = %s", (track_id, kind)
    ).fetchone()
    return None if row is None else {"version": row[0], "content_hash": row[1], "data": row[2]}


def _vector(value: Any) -> np.ndarray:
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def latest_embedding(conn: psycopg.Connection[Any], track_id: int) -> tuple[str, np.ndarray] | None:
    """(model key, vector) of the track's newest embedding, if it has one."""
    row = conn.execute(
        "SELECT model, embedding FROM embeddings WHERE track_id = %s ORDER BY created_at DESC LIMIT 1", (track_id,)
    ).fetchone()
    return None if row is None else (row[0], _vector(row[1]))


def llm_labels(
    conn: psycopg.Connection[Any], analyzer: str, prompt_version: str
) -> tuple[str | None, list[tuple[int, dict[str, Any], np.ndarray, str]]]:
    """LLM analyses of current track texts joined with their embeddings (of the most used model).

    Returns (embedding model, [(track id, result, vector, lyrics)]).
    """
    row = conn.execute(
        """
        SELECT e.model FROM analyses a JOIN embeddings e ON e.track_id = a.track_id
        WHERE a.analyzer = %s AND a.prompt_version = %s AND NOT a.fallback
        GROUP BY e.model ORDER BY count(*) DESC LIMIT 1
        """,
        (analyzer, prompt_version),
    ).fetchone()
    if row is None:
        return None, []
    model = row[0]
    rows = conn.execute(
        """
        SELECT a.track_id, a.result, e.embedding, t.lyrics
        FROM analyses a
        JOIN tracks t ON t.id = a.track_id AND t.content_hash = a.content_hash
        JOIN embeddings e ON e.track_id = a.track_id AND e.model = %s
        WHERE a.analyzer = %s AND a.prompt_version = %s AND NOT a.fallback
        ORDER BY a.track_id
        """,
        (model, analyzer, prompt_version),
    ).fetchall()
    return model, [(int(r[0]), r[1], _vector(r[2]), r[3]) for r in rows]
