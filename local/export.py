"""``contentfn export``: tracks with their profiles, or detections, to CSV, JSON Lines or Parquet.

Rows come from a server-side cursor (:func:`shared.store.export.export_rows`) and are written as they
arrive: CSV and JSONL line by line, Parquet one row group per batch, so memory does not grow with
the catalogue.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from shared.store.export import DETECTION_COLUMNS, TRACK_COLUMNS, ExportKind, json_line

__all__ = ["ExportFormat", "write_export"]

ExportFormat = Literal["csv", "jsonl", "parquet"]

ROW_GROUP = 5000


def write_export(rows: Iterable[dict[str, Any]], kind: ExportKind, fmt: ExportFormat, out: Path) -> int:
    """Write ``rows`` to ``out`` in ``fmt``; returns how many were written."""
    columns = TRACK_COLUMNS if kind == "tracks" else DETECTION_COLUMNS
    if fmt == "parquet":
        return _parquet(rows, columns, out)
    with out.open("w", encoding="utf-8", newline="") as f:
        return _csv(rows, list(columns), f) if fmt == "csv" else _jsonl(rows, f)


def _jsonl(rows: Iterable[dict[str, Any]], f: IO[str]) -> int:
    n = 0
    for row in rows:
        f.write(json_line(row).decode())
        n += 1
    return n


def _csv(rows: Iterable[dict[str, Any]], names: list[str], f: IO[str]) -> int:
    writer = csv.DictWriter(f, fieldnames=names)
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()})
        n += 1
    return n


def _parquet(rows: Iterable[dict[str, Any]], columns: dict[str, str], out: Path) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # an optional dependency: the export extra
        raise RuntimeError("Parquet export needs pyarrow: pip install 'contentfn[export]'") from None
    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "str": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    schema = pa.schema([(name, types[t]) for name, t in columns.items()])
    n = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for group in _groups(rows, ROW_GROUP):
            table = pa.table({name: [r[name] for r in group] for name in columns}, schema=schema)
            writer.write_table(table, row_group_size=ROW_GROUP)
            n += len(group)
    return n


def _groups(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    group: list[dict[str, Any]] = []
    for row in rows:
        group.append(row)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group
