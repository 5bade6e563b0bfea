"""Stream-parse uploaded track files (``.jsonl``/``.ndjson``, ``.csv``, ``.json``) into validated rows.

Pure and database-free: the ingest core feeds it the object's byte stream and gets back, record by
record, either a :class:`ParsedRow` (a validated :class:`~shared.models.TrackIn`) or a :class:`BadRow`
(why that record was refused). One bad record never sinks the file; only problems that make the rest
of the file untrustworthy (not UTF-8, a CSV header without a required column, a JSON document of the
wrong shape or cut short) raise :class:`~shared.errors.FileRejected`.

Memory stays bounded by the record, not the file: bytes are read in fixed chunks and split into
lines here rather than through ``io.TextIOWrapper``, so that a decoding error can name the exact
line and byte offset (a text wrapper decodes ahead in chunks and loses both). The UTF-8 byte order
mark is dropped, as ``utf-8-sig`` would.

Bad-row reasons name the field and the problem, never the field's content: they end up in logs, the
ledger and API responses, and uploaded text is not ours to echo.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, Literal

import ijson
from pydantic import ValidationError

from shared.errors import FileRejected, UnsupportedObject
from shared.models import TrackIn

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

# A record (a jsonl line, a CSV physical line or field) may be at most this many times the per-field
# cap. Beyond it a jsonl line is a bad row (skipped without being held in memory) and a CSV file is
# refused: a CSV field that large almost always means an unbalanced quote has swallowed the rest of
# the file, and the parser cannot find the next record boundary again.
_RECORD_CAP_FACTOR: Final = 16
_CHUNK_BYTES: Final = 1 << 20
_BOM: Final = codecs.BOM_UTF8
_REQUIRED: Final = ("artist", "title", "lyrics")
_OPTIONAL: Final = ("source", "source_id")
_TRACK_FIELDS: Final = frozenset(_REQUIRED + _OPTIONAL)
# How deep a record's JSON may nest (the record object is level 1). Deeper values are refused before
# anything recurses over them: the decoder, the size check, validation and the jsonb encoder all
# recurse per level and raise RecursionError near Python's limit (about 1,000), and ijson keeps one
# path prefix per open level, so its memory grows with the square of the depth.
MAX_NESTING_DEPTH: Final = 64
# A JSON escape for a UTF-16 surrogate; only these can produce text that is not encodable as UTF-8.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """A record that validated. ``line`` is where it starts (1-based; the record index for ``.json``)."""

    line: int
    track: TrackIn


@dataclass(frozen=True, slots=True)
class BadRow:
    """A record that did not validate. ``reason`` names fields and problems, never their content."""

    line: int
    reason: str


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


def iter_rows(stream: BinaryIO, fmt: FileFormat, *, max_field_bytes: int) -> Iterator[ParsedRow | BadRow]:
    """Yield one ParsedRow or BadRow per record of ``stream``, in file order.

    ``line`` is the 1-based line where the record starts for ``jsonl`` and ``csv``; for ``json`` it
    is the 1-based index of the record in the array (a streaming JSON parser reports no positions).
    Any field (after decoding) longer than ``max_field_bytes`` UTF-8 bytes makes its record bad.

    Raises FileRejected for whole-file problems, possibly after rows were yielded: a caller that
    writes as it goes decides whether to keep those rows.
    """
    if max_field_bytes < 1:
        raise ValueError("max_field_bytes must be positive")
    if fmt == "jsonl":
        return _iter_jsonl(stream, max_field_bytes)
    if fmt == "csv":
        return _iter_csv(stream, max_field_bytes)
    if fmt == "json":
        return _iter_json(stream, max_field_bytes)
    raise ValueError(f"unknown format {fmt!r}")


# --- validation shared by every format ---------------------------------------------------------


def _validate(line: int, record: dict[str, Any], renamed_id: bool) -> ParsedRow | BadRow:
    try:
        return ParsedRow(line, TrackIn.model_validate(record))
    except ValidationError as exc:
        return BadRow(line, _describe(exc, renamed_id))


def _describe(exc: ValidationError, renamed_id: bool) -> str:
    """Turn pydantic errors into a reason without the offending input (pydantic keeps it apart)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = err["loc"]
        field = str(loc[0]) if loc else "record"
        if field == "source_id" and renamed_id:
            field = "id"
        if err["type"] == "missing":
            problems.append(f"missing required field '{field}'")
        else:
            problems.append(f"field '{field}': {err['msg']}")
    return "; ".join(problems)


def _to_track_fields(record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Split a flat record into TrackIn fields and metadata (mutates and reuses ``record``).

    ``id`` stands in for ``source_id`` unless both are present; then ``id`` stays metadata. A
    ``metadata`` object is merged into the metadata, its keys winning over same-named columns,
    because it is the more explicit of the two.
    """
    fields = {name: record.pop(name) for name in _TRACK_FIELDS.intersection(record)}
    renamed_id = False
    if "id" in record and "source_id" not in fields:
        fields["source_id"] = record.pop("id")
        renamed_id = True
    # An optional field given as null means "not given"; TrackIn's defaults then apply.
    if fields.get("source", "") is None:
        del fields["source"]
    nested = record.get("metadata")
    if isinstance(nested, dict):
        del record["metadata"]
        record.update(nested)
    fields["metadata"] = record
    return fields, renamed_id


def _oversized_field(record: dict[str, Any], max_field_bytes: int) -> str | None:
    """Name of the first field whose UTF-8 size exceeds the cap, or None.

    A string of n characters has at most 4n UTF-8 bytes, so only strings longer than a quarter of the
    cap need encoding; containers (JSON metadata) are measured as compact JSON.
    """
    quick = max_field_bytes // 4
    for name, value in record.items():
        if isinstance(value, str):
            if len(value) > quick and len(value.encode("utf-8", "surrogatepass")) > max_field_bytes:
                return str(name)
        elif isinstance(value, dict | list):
            size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
            if size > max_field_bytes:
                return str(name)
    return None


def _unencodable_field(record: dict[str, Any]) -> str | None:
    """Name of the first field holding a lone UTF-16 surrogate (from a JSON escape), or None.

    PostgreSQL would refuse such text when the batch is written, failing every row beside it; the
    record is refused here instead.
    """
    for name, value in record.items():
        try:
            json.dumps({name: value}, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return str(name) if str(name).isprintable() else "a field name"
    return None


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _check_and_validate(line: int, record: Any, field_cap: int, surrogates: bool) -> ParsedRow | BadRow:
    """Validate one decoded JSON record; ``field_cap`` 0 skips the size check (the caller proved it moot)."""
    if not isinstance(record, dict):
        return BadRow(line, f"record is a JSON {_json_type(record)}, not an object")
    if surrogates and (name := _unencodable_field(record)) is not None:
        return BadRow(line, f"field '{name}' contains an unpaired UTF-16 surrogate escape")
    if field_cap and (name := _oversized_field(record, field_cap)) is not None:
        return BadRow(line, f"field '{name}' is longer than {field_cap} bytes")
    fields, renamed_id = _to_track_fields(record)
    return _validate(line, fields, renamed_id)


# --- physical lines ----------------------------------------------------------------------------


class _Lines:
    """Split a byte stream into lines (``\\n``, ``\\r\\n`` or ``\\r``), each decoded as strict UTF-8.

    Lines keep their terminators (the csv module needs them inside quoted fields). A line longer
    than ``max_line_bytes`` is either skipped (yielded as None, never held whole) or refused.
    ``line_no`` is the number of the line last yielded.
    """

    def __init__(self, stream: BinaryIO, max_line_bytes: int, *, refuse_long: bool, what: str) -> None:
        self._stream = stream
        self._max = max_line_bytes
        self._refuse_long = refuse_long
        self._what = what
        self.line_no = 0
        self._offset = 0  # byte offset of the next line's start in the file

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRejected(
                f"file is not valid UTF-8: bad byte at line {self.line_no + 1} (byte offset {self._offset + exc.start})"
            ) from None

    def _too_long(self) -> None:
        if self._refuse_long:
            raise FileRejected(f"{self._what} at line {self.line_no + 1} is longer than {self._max} bytes")

    def _chunks(self) -> Iterator[bytes]:
        read = self._stream.read
        chunk = read(_CHUNK_BYTES)
        # The BOM may straddle reads on a stream that returns short reads.
        while chunk and len(chunk) < len(_BOM) and _BOM.startswith(chunk):
            more = read(_CHUNK_BYTES)
            if not more:
                break
            chunk += more
        if chunk.startswith(_BOM):
            chunk = chunk[len(_BOM) :]
            self._offset = len(_BOM)
            if not chunk:  # the read held nothing but the BOM; that is not the end of the file
                chunk = read(_CHUNK_BYTES)
        while chunk:
            yield chunk
            chunk = read(_CHUNK_BYTES)

    def __iter__(self) -> Iterator[str | None]:
        parts: list[bytes] = []  # pieces of the open (unterminated) line
        size = 0
        is_open = False
        skipping = False  # the open line is over-long: count its bytes, keep none
        after_cr = False  # the open line ends with \r, which may pair with a \n in the next read
        limit = self._max
        for chunk in self._chunks():
            if after_cr:
                if chunk.startswith(b"\n"):
                    if not skipping:
                        parts.append(b"\n")
                    size += 1
                    chunk = chunk[1:]
                yield self._finish(parts, size, skipping)
                parts, size, is_open, skipping, after_cr = [], 0, False, False, False
                if not chunk:
                    continue
            pieces = chunk.splitlines(keepends=True)
            last = pieces[-1]
            tail_open = not last.endswith(b"\n")  # unterminated, or a \r that a \n may follow
            if tail_open:
                pieces.pop()
            for piece in pieces:
                if is_open:
                    if not skipping:
                        parts.append(piece)
                    size += len(piece)
                    yield self._finish(parts, size, skipping)
                    parts, size, is_open, skipping = [], 0, False, False
                elif len(piece) <= limit:
                    text = self._decode(piece)
                    self._offset += len(piece)
                    self.line_no += 1
                    yield text
                else:
                    yield self._finish([], len(piece), True)
            if tail_open:
                is_open = True
                size += len(last)
                if not skipping:
                    parts.append(last)
                    if size > limit:
                        self._too_long()
                        skipping, parts = True, []
                after_cr = last.endswith(b"\r")
        if is_open:
            yield self._finish(parts, size, skipping)

    def _finish(self, parts: list[bytes], size: int, skipping: bool) -> str | None:
        if skipping or size > self._max:
            self._too_long()
            self._offset += size
            self.line_no += 1
            return None
        raw = parts[0] if len(parts) == 1 else b"".join(parts)
        text = self._decode(raw)
        self._offset += size
        self.line_no += 1
        return text


# --- JSON lines ----------------------------------------------------------------------------------


def _refuse_constant(name: str) -> float:
    # Python's json accepts NaN and Infinity; PostgreSQL's jsonb does not, and would fail the batch.
    raise ValueError(f"{name} is not a JSON value")


_JSON_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


_TOO_DEEP: Final = f"not accepted JSON: nesting is deeper than {MAX_NESTING_DEPTH} levels"


def _nesting_depth(value: Any) -> int:
    """Depth of a decoded JSON value (a scalar is 0, ``[]`` is 1), walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_NESTING_DEPTH:
            break  # deep enough to refuse; no need to walk the rest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _iter_jsonl(stream: BinaryIO, max_field_bytes: int) -> Iterator[ParsedRow | BadRow]:
    record_cap = max_field_bytes * _RECORD_CAP_FACTOR
    lines = _Lines(stream, record_cap, refuse_long=False, what="line")
    loads = _JSON_DECODER.decode
    for text in lines:
        line = lines.line_no
        if text is None:
            yield BadRow(line, f"line is longer than {record_cap} bytes")
            continue
        if not text.strip():
            continue
        try:
            record = loads(text)
        except json.JSONDecodeError as exc:
            yield BadRow(line, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        except ValueError as exc:  # NaN or Infinity
            yield BadRow(line, f"not valid JSON: {exc}")
            continue
        except RecursionError:
            # The C decoder recurses once per level: a line of many thousand "[" ends here.
            yield BadRow(line, _TOO_DEEP)
            continue
        # Depth can't exceed the number of opening brackets, so only a line with many of them is walked.
        if text.count("{") + text.count("[") > MAX_NESTING_DEPTH and _nesting_depth(record) > MAX_NESTING_DEPTH:
            yield BadRow(line, _TOO_DEEP)
            continue
        # A decoded field can't be longer than the line that held it: skip the per-field check then.
        cap = max_field_bytes if len(text) * 4 > max_field_bytes else 0
        surrogates = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
        yield _check_and_validate(line, record, cap, surrogates)


# --- CSV -----------------------------------------------------------------------------------------


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
        if lowered in _TRACK_FIELDS or lowered == "id":
            name = lowered
        columns.append(name or f"column_{index}")
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise FileRejected(f"CSV header repeats the column {name[:64]!r}")
        seen.add(name)
    missing = [name for name in _REQUIRED if name not in seen]
    if missing:
        raise FileRejected(f"CSV header lacks required column(s): {', '.join(missing)}")
    return columns


def _iter_csv(stream: BinaryIO, max_field_bytes: int) -> Iterator[ParsedRow | BadRow]:
    hard_cap = max_field_bytes * _RECORD_CAP_FACTOR
    _raise_field_size_limit(hard_cap)
    lines = _Lines(stream, hard_cap, refuse_long=True, what="CSV line")
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
        fields, renamed_id = _to_track_fields(record)
        yield _validate(start, fields, renamed_id)


def _oversized_cell(columns: list[str], cells: list[str], max_field_bytes: int) -> str | None:
    for name, cell in zip(columns, cells, strict=True):
        if len(cell.encode("utf-8")) > max_field_bytes:
            return name
    return None


def _text_lines(lines: _Lines) -> Iterator[str]:
    for text in lines:
        # refuse_long=True: _Lines raises instead of yielding None.
        assert text is not None
        yield text


# --- JSON document -------------------------------------------------------------------------------


class _Utf8Reader:
    """A ``read(n)`` view of a byte stream that drops a leading BOM and refuses invalid UTF-8.

    ijson validates strings but not with a position, and its error text quotes the input; checking
    here costs one C decode pass and names the byte offset and line.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._offset = 0  # bytes of the file consumed so far, BOM included
        self._newlines = 0
        self._head = b""  # read ahead and not yet handed out from _head_pos on
        self._head_pos = 0
        self._started = False

    def peek_first_byte(self) -> bytes:
        """The first non-whitespace byte (b"" for an empty document), without consuming it."""
        while True:
            chunk = self._next_chunk()
            if not chunk:
                return b""
            stripped = chunk.lstrip(b" \t\r\n")
            self._head += chunk
            if stripped:
                return stripped[:1]

    def _next_chunk(self) -> bytes:
        chunk = self._stream.read(_CHUNK_BYTES)
        if not self._started:
            while chunk and len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                more = self._stream.read(_CHUNK_BYTES)
                if not more:
                    break
                chunk += more
            self._started = True
            if chunk.startswith(_BOM):
                self._offset = len(_BOM)
                chunk = chunk[len(_BOM) :] or self._stream.read(_CHUNK_BYTES)
        try:
            self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            # The decoder may hold up to 3 bytes of an unfinished character from the previous chunk.
            held = len(exc.object) - len(chunk)
            position = exc.start - held
            offset = self._offset + position
            line = self._newlines + chunk.count(b"\n", 0, max(position, 0)) + 1
            raise FileRejected(f"file is not valid UTF-8: bad byte at line {line} (byte offset {offset})") from None
        self._offset += len(chunk)
        self._newlines += chunk.count(b"\n")
        return chunk

    def read(self, size: int = -1) -> bytes:
        """The next piece of the document, holding at most ``_MAX_OPENS_PER_READ`` opening brackets.

        ijson parses each read whole before the caller sees an event, so the pieces bound how deep
        it can go before the depth check in the event stream stops it. A typical 1 MiB chunk is one
        piece; a run of brackets is cut in halves until a piece is under the bound.
        """
        if size == 0:  # ijson probes with read(0) to tell bytes from text
            return b""
        head, start = self._head, self._head_pos
        if start == len(head):
            head, start = self._next_chunk(), 0
            self._head = head
        end = len(head)
        limit = _MAX_OPENS_PER_READ
        while end - start > limit and head.count(b"[", start, end) + head.count(b"{", start, end) > limit:
            end = start + (end - start) // 2
        if start == 0 and end == len(head):
            self._head, self._head_pos = b"", 0
            return head
        self._head_pos = end
        return head[start:end]


class _NestedTooDeep(Exception):
    """Raised inside the event stream of a JSON document when a record nests too deep."""


# A read of the document handed to ijson holds at most this many "[" or "{" (see _Utf8Reader.read): the
# parser then goes at most this much deeper than the limit before the depth check sees an event, and
# its per-level memory (a path prefix each, growing with the depth) stays in the tens of megabytes.
_MAX_OPENS_PER_READ: Final = 4096

_DEPTH_CHANGE: Final = {"start_map": 1, "start_array": 1, "end_map": -1, "end_array": -1}


def _depth_limited(events: Iterable[tuple[str, str, Any]], limit: int) -> Iterator[tuple[str, str, Any]]:
    """Pass parse events through, raising _NestedTooDeep once containers open more than ``limit`` deep.

    The check must sit in the event stream: ijson's memory per open level grows with the depth, so
    a document of nothing but "[" exhausts memory long before any record is built.
    """
    depth = 0
    change = _DEPTH_CHANGE.get
    for event in events:
        step = change(event[1])
        if step:
            depth += step
            if depth > limit:
                raise _NestedTooDeep
        yield event


class _Shape:
    """Watches the parse events of a ``{...}`` document for its ``tracks`` array."""

    def __init__(self) -> None:
        self.found = False

    def watch(self, events: Iterable[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
        events = iter(events)
        for event in events:
            if event[0] == "tracks":
                if event[1] != "start_array":
                    raise FileRejected("JSON object's 'tracks' member is not an array")
                self.found = True
                yield event
                # From here on, delegate without a Python-level look at every event.
                yield from events
                return
            yield event


def _iter_json(stream: BinaryIO, max_field_bytes: int) -> Iterator[ParsedRow | BadRow]:
    reader = _Utf8Reader(stream)
    first = reader.peek_first_byte()
    shape: _Shape | None = None
    if first == b"[":
        # Records sit one level down, in the top-level array.
        events = _depth_limited(ijson.parse(reader, use_float=True), MAX_NESTING_DEPTH + 1)
        records = ijson.items(events, "item")
    elif first == b"{":
        shape = _Shape()
        # Records sit two levels down, in the object's "tracks" array.
        events = shape.watch(_depth_limited(ijson.parse(reader, use_float=True), MAX_NESTING_DEPTH + 2))
        records = ijson.items(events, "tracks.item")
    elif not first:
        raise FileRejected("JSON file is empty; expected an array of track objects or an object with a 'tracks' array")
    else:
        raise FileRejected("JSON document is not an array of track objects or an object with a 'tracks' array")
    index = 0
    try:
        for record in records:
            index += 1
            # yajl turns a lone surrogate escape into "?", so no surrogate check is needed here.
            yield _check_and_validate(index, record, max_field_bytes, False)
    except ijson.IncompleteJSONError as exc:
        # ijson's message quotes the input around the error, so it is never passed on.
        if "premature EOF" in str(exc):
            raise FileRejected(f"JSON file is truncated: it ends after record {index}") from None
        raise FileRejected(f"JSON file is malformed after record {index}") from None
    except ijson.JSONError:
        raise FileRejected(f"JSON file is malformed after record {index}") from None
    except _NestedTooDeep:
        # A stream parser cannot skip the rest of one record and resume at the next.
        raise FileRejected(
            f"JSON record {index + 1} nests deeper than {MAX_NESTING_DEPTH} levels; the file is refused from there"
        ) from None
    if shape is not None and not shape.found:
        raise FileRejected("JSON object has no 'tracks' array")
