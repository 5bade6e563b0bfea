"""CSV (``.csv``): a header row naming the columns, then one record per row (quoted fields may span lines)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import BinaryIO

from functions.ingest.parsing.lines import RECORD_CAP_FACTOR, Lines
from functions.ingest.parsing.rows import (
    REQUIRED_FIELDS,
    TRACK_FIELDS,
    BadRow,
    ParsedRow,
    to_track_fields,
    validate_record,
)
from shared.errors import FileRejected

__all__ = ["iter_csv"]


class _StrictExcel(csv.excel):
    # strict: an unterminated quote at end of file is an error instead of a silently short record.
    strict = True


def _raise_field_size_limit(limit: int) -> None:
    # The limit is process-wide: only ever raise it, so other csv users in the process keep working.
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def _csv_header(reader: Iterator[list[str]]) -> list[str]:
    try:
        for header in reader:
            if header:
                return header
    except csv.Error as exc:
        raise FileRejected(f"CSV header row is malformed: {exc}") from None
    raise FileRejected("CSV file has no header row")


def _csv_columns(header: list[str]) -> list[str]:
    """Column names as record keys: trimmed; the known ones matched case-insensitively.

    Spreadsheet exports capitalise headers ("Artist"); a file must not be refused for that.
    """
    columns = []
    for index, raw in enumerate(header, start=1):
        name = raw.strip()
        lowered = name.lower()
        if lowered in TRACK_FIELDS or lowered == "id":
            name = lowered
        columns.append(name or f"column_{index}")
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise FileRejected(f"CSV header repeats the column {name[:64]!r}")
        seen.add(name)
    missing = [name for name in REQUIRED_FIELDS if name not in seen]
    if missing:
        raise FileRejected(f"CSV header lacks required column(s): {', '.join(missing)}")
    return columns


def iter_csv(
    stream: BinaryIO, max_field_bytes: int, max_record_bytes: int | None = None
) -> Iterator[ParsedRow | BadRow]:
    hard_cap = max_record_bytes or max_field_bytes * RECORD_CAP_FACTOR
    _raise_field_size_limit(hard_cap)
    lines = Lines(stream, hard_cap, refuse_long=True, what="CSV line")
    reader = csv.reader(_text_lines(lines), dialect=_StrictExcel)
    header = _csv_header(reader)
    columns = _csv_columns(header)
    width = len(columns)
    unnamed = [name for name, raw in zip(columns, header, strict=True) if not raw.strip()]
    quick = max_field_bytes // 4
    record_end = reader.line_num
    while True:
        start = record_end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            record_end = reader.line_num
            if "field larger than field limit" in str(exc):
                raise FileRejected(
                    f"CSV field in the record starting at line {start} is longer than {hard_cap} bytes;"
                    " is a quote left open?"
                ) from None
            if "unexpected end of data" in str(exc):
                raise FileRejected(
                    f"CSV file ends inside a quoted field opened in the record starting at line {start}"
                    " (truncated file or unbalanced quote)"
                ) from None
            yield BadRow(start, f"malformed CSV record: {exc}")
            continue
        record_end = reader.line_num
        if not cells:
            continue
        if len(cells) != width:
            yield BadRow(start, f"row has {len(cells)} cells; the header has {width}")
            continue
        if max(map(len, cells)) > quick and (too_long := _oversized_cell(columns, cells, max_field_bytes)):
            yield BadRow(start, f"field '{too_long}' is longer than {max_field_bytes} bytes")
            continue
        record = dict(zip(columns, cells, strict=True))
        for name in unnamed:
            if not record[name]:
                del record[name]
        # An empty optional cell means "not given", so TrackIn's defaults apply.
        if record.get("source") == "":
            del record["source"]
        fields, renamed_id = to_track_fields(record)
        yield validate_record(start, fields, renamed_id)


def _oversized_cell(columns: list[str], cells: list[str], max_field_bytes: int) -> str | None:
    for name, cell in zip(columns, cells, strict=True):
        if len(cell.encode("utf-8")) > max_field_bytes:
            return name
    return None


def _text_lines(lines: Lines) -> Iterator[str]:
    for text in lines:
        # refuse_long=True: Lines raises instead of yielding None.
        assert text is not None
        yield text
