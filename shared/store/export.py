"""Rows for export: tracks with their current profile and lyric features, or detections, read
through a server-side cursor in batches so memory stays flat whatever the catalogue's size.

Every row is a flat dict of JSON-able scalars (nested values as JSON text), in ``*_COLUMNS`` order,
so the same rows feed NDJSON, CSV and Parquet alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql

from shared.store.current_analysis import CURRENT_ANALYSIS

__all__ = ["DETECTION_COLUMNS", "TRACK_COLUMNS", "ExportFilters", "ExportKind", "export_rows", "json_line"]

ExportKind = Literal["tracks", "detections"]

# name → type, for writers that need a schema (Parquet): int, float, bool, str, timestamp.
TRACK_COLUMNS: dict[str, str] = {
    "id": "int",
    "source": "str",
    "source_id": "str",
    "artist": "str",
    "title": "str",
    "lyrics": "str",
    "metadata": "str",
    "content_hash": "str",
    "created_at": "timestamp",
    "updated_at": "timestamp",
    "analyzer": "str",
    "prompt_version": "str",
    "sentiment": "str",
    "sentiment_score": "float",
    "themes": "str",
    "complexity": "float",
    "quality": "int",
    "confidence": "float",
    "fallback": "bool",
    "analysed_at": "timestamp",
    "features": "str",
}
DETECTION_COLUMNS: dict[str, str] = {
    "id": "int",
    "image_id": "int",
    "bucket": "str",
    "key": "str",
    "stream_id": "int",
    "frame_ts": "float",
    "model": "str",
    "class_id": "int",
    "label": "str",
    "score": "float",
    "x1": "float",
    "y1": "float",
    "x2": "float",
    "y2": "float",
    "created_at": "timestamp",
}


@dataclass(frozen=True)
class ExportFilters:
    """Tracks: artist (case-insensitive), source, and a time range on ``updated_at``.
    Detections: the time range on ``created_at`` only."""

    artist: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def export_rows(
    conn: psycopg.Connection[Any], kind: ExportKind, filters: ExportFilters, *, batch: int = 2000
) -> Iterator[dict[str, Any]]:
    """Rows in id order, ``batch`` at a time from a named (server-side) cursor.

    Runs in the caller's transaction, which must stay open while the rows are consumed.
    """
    query, params = (_tracks if kind == "tracks" else _detections)(filters)
    with conn.cursor(name=f"export_{kind}") as cur:
        cur.itersize = batch
        cur.execute(query, params)
        names = [d.name for d in cur.description or []]
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                return
            for values in rows:
                yield _flat(dict(zip(names, values, strict=True)), kind)


def _where(conditions: list[sql.Composable]) -> sql.Composed:
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.Composed([])


def _tracks(f: ExportFilters) -> tuple[sql.Composed, dict[str, Any]]:
    conditions: list[sql.Composable] = []
    if f.artist is not None:
        conditions.append(sql.SQL("lower(t.artist) = lower(%(artist)s)"))
    if f.source is not None:
        conditions.append(sql.SQL("t.source = %(source)s"))
    if f.since is not None:
        conditions.append(sql.SQL("t.updated_at >= %(since)s"))
    if f.until is not None:
        conditions.append(sql.SQL("t.updated_at < %(until)s"))
    query = (
        sql.SQL(
            "SELECT t.id, t.source, t.source_id, t.artist, t.title, t.lyrics, t.metadata, t.content_hash,"
            " t.created_at, t.updated_at, p.analyzer, p.prompt_version, p.result, p.confidence, p.fallback,"
            " p.created_at AS analysed_at, fe.data AS features"
            " FROM tracks t"
            + CURRENT_ANALYSIS
            + " LEFT JOIN enrichments fe ON fe.track_id = t.id AND fe.kind = 'features'"
        )
        + _where(conditions)
        + sql.SQL(" ORDER BY t.id")
    )
    return query, {"artist": f.artist, "source": f.source, "since": f.since, "until": f.until}


def _detections(f: ExportFilters) -> tuple[sql.Composed, dict[str, Any]]:
    conditions: list[sql.Composable] = []
    if f.since is not None:
        conditions.append(sql.SQL("d.created_at >= %(since)s"))
    if f.until is not None:
        conditions.append(sql.SQL("d.created_at < %(until)s"))
    query = (
        sql.SQL(
            "SELECT d.id, d.image_id, i.bucket, i.key, d.stream_id, d.frame_ts, d.model, d.class_id, d.label,"
            " d.score, d.x1, d.y1, d.x2, d.y2, d.created_at"
            " FROM detections d LEFT JOIN images i ON i.id = d.image_id"
        )
        + _where(conditions)
        + sql.SQL(" ORDER BY d.id")
    )
    return query, {"since": f.since, "until": f.until}


def _flat(row: dict[str, Any], kind: ExportKind) -> dict[str, Any]:
    if kind == "detections":
        return row
    result = row.pop("result") or {}
    profile = result.get("profile") or {}
    row["metadata"] = json.dumps(row["metadata"], ensure_ascii=False, sort_keys=True)
    row["features"] = None if row["features"] is None else json.dumps(row["features"], sort_keys=True)
    row["sentiment"] = profile.get("sentiment")
    row["sentiment_score"] = profile.get("sentiment_score")
    row["themes"] = None if "themes" not in profile else json.dumps(profile["themes"], ensure_ascii=False)
    row["complexity"] = profile.get("complexity")
    row["quality"] = profile.get("quality")
    return {name: row.get(name) for name in TRACK_COLUMNS}


def json_line(row: dict[str, Any]) -> bytes:
    """One row as an NDJSON line (timestamps in ISO 8601)."""
    return (json.dumps(row, ensure_ascii=False, default=_iso) + "\n").encode()


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
