"""Stream-parse uploaded track files (``.jsonl``/``.ndjson``, ``.csv``, ``.json``) into validated rows.

Pure and database-free: the ingest core feeds it the object's byte stream and gets back, record by
record, either a :class:`ParsedRow` (a validated :class:`~shared.models.TrackIn`) or a :class:`BadRow`
(why that record was refused). One bad record never sinks the file; only problems that make the rest
of the file untrustworthy (not UTF-8, a CSV header without a required column, a JSON document of the
wrong shape or cut short) raise :class:`~shared.errors.FileRejected`.

One module per role: ``lines`` (bytes to strictly decoded lines), ``rows`` (the record types and the
validation every format shares), and one module per format: ``jsonl``, ``csv``, ``json``.

Bad-row reasons name the field and the problem, never the field's content: they end up in logs, the
ledger and API responses, and uploaded text is not ours to echo.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Final, Literal

from functions.ingest.parsing.csv import iter_csv
from functions.ingest.parsing.json import iter_json
from functions.ingest.parsing.jsonl import iter_jsonl
from functions.ingest.parsing.lines import RECORD_CAP_FACTOR
from functions.ingest.parsing.rows import MAX_NESTING_DEPTH, BadRow, ParsedRow
from shared.errors import UnsupportedObject

__all__ = [
    "ACCEPTED_EXTENSIONS",
    "MAX_NESTING_DEPTH",
    "BadRow",
    "FileFormat",
    "ParsedRow",
    "detect_format",
    "iter_rows",
]

FileFormat = Literal["jsonl", "csv", "json"]

ACCEPTED_EXTENSIONS: Final[dict[str, FileFormat]] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".json": "json",
}


def detect_format(key: str) -> FileFormat:
    """The file format named by an object key's extension (case-insensitive).

    Raises UnsupportedObject naming the extension and the accepted ones, so the uploader learns what
    to rename rather than seeing a parse error from the wrong parser.
    """
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    extension = f".{ext.lower()}" if dot and stem else ""
    fmt = ACCEPTED_EXTENSIONS.get(extension)
    if fmt is None:
        accepted = ", ".join(ACCEPTED_EXTENSIONS)
        shown = f"extension {extension[:24]!r}" if extension else "no extension"
        raise UnsupportedObject(f"unsupported track file: {shown}; accepted extensions are {accepted}")
    return fmt


def iter_rows(
    stream: BinaryIO, fmt: FileFormat, *, max_field_bytes: int, max_record_bytes: int | None = None
) -> Iterator[ParsedRow | BadRow]:
    """Yield one ParsedRow or BadRow per record of ``stream``, in file order.

    ``line`` is the 1-based line where the record starts for ``jsonl`` and ``csv``; for ``json`` it
    is the 1-based index of the record in the array (a streaming JSON parser reports no positions).
    Any field (after decoding) longer than ``max_field_bytes`` UTF-8 bytes makes its record bad.
    A record over ``max_record_bytes`` (default: ``RECORD_CAP_FACTOR`` times the field cap) is
    stopped while it is read, never built whole: a ``jsonl`` line is a bad row and parsing goes on;
    a CSV line or a ``json`` record refuses the file from there, as neither parser can find the
    next record again.

    Raises FileRejected for whole-file problems, possibly after rows were yielded: a caller that
    writes as it goes decides whether to keep those rows.
    """
    if max_field_bytes < 1:
        raise ValueError("max_field_bytes must be positive")
    record_cap = max_record_bytes or max_field_bytes * RECORD_CAP_FACTOR
    if record_cap < 1:
        raise ValueError("max_record_bytes must be positive")
    if fmt == "jsonl":
        return iter_jsonl(stream, max_field_bytes, record_cap)
    if fmt == "csv":
        return iter_csv(stream, max_field_bytes, record_cap)
    if fmt == "json":
        return iter_json(stream, max_field_bytes, record_cap)
    raise ValueError(f"unknown format {fmt!r}")
