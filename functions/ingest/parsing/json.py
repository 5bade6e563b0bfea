"""A JSON document (``.json``): an array of records, or an object whose ``tracks`` member is one.

Streamed with ijson, so memory stays bounded by the record, and the record by the record cap: a
record still open after that many bytes have been handed to the parser stops the parse. A stream
parser reports no positions and cannot resume after an error (nor skip the rest of one record: yajl
buffers a whole string token before it reports it), so records are numbered by index, and a broken
document, a record nested too deep or a record over the cap is refused from that point; the records
before it stand.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Final

import ijson

from functions.ingest.parsing.lines import BOM, CHUNK_BYTES
from functions.ingest.parsing.rows import MAX_NESTING_DEPTH, BadRow, ParsedRow, check_and_validate
from shared.errors import FileRejected

__all__ = ["iter_json"]


class _Utf8Reader:
    """A ``read(n)`` view of a byte stream that drops a leading BOM and refuses invalid UTF-8.

    ijson validates strings but not with a position, and its error text quotes the input; checking
    here costs one C decode pass and names the byte offset and line.
    """

    def __init__(self, stream: BinaryIO, record_cap: int) -> None:
        self._stream = stream
        self.record_cap = record_cap
        # Bytes handed to the parser so far, and that count when the parser last stood between
        # records (set by _Limits). A piece is at most an eighth of the cap, so a record is stopped
        # within an eighth of the cap past it; 1 MiB pieces under the default cap, as before.
        self.handed = 0
        self.boundary = 0
        self._piece = max(64 * 1024, min(CHUNK_BYTES, record_cap // 8))
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
        chunk = self._stream.read(CHUNK_BYTES)
        if not self._started:
            while chunk and len(chunk) < len(BOM) and BOM.startswith(chunk):
                more = self._stream.read(CHUNK_BYTES)
                if not more:
                    break
                chunk += more
            self._started = True
            if chunk.startswith(BOM):
                self._offset = len(BOM)
                chunk = chunk[len(BOM) :] or self._stream.read(CHUNK_BYTES)
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
        # The parser asks for more only once it has passed on every event of the last piece: if no
        # record boundary came since ``boundary``, one record spans all the bytes handed since.
        if self.handed - self.boundary > self.record_cap:
            raise _RecordTooLarge
        head, start = self._head, self._head_pos
        if start == len(head):
            head, start = self._next_chunk(), 0
            self._head = head
        end = min(len(head), start + self._piece)
        limit = _MAX_OPENS_PER_READ
        while end - start > limit and head.count(b"[", start, end) + head.count(b"{", start, end) > limit:
            end = start + (end - start) // 2
        if start == 0 and end == len(head):
            self._head, self._head_pos = b"", 0
            self.handed += end
            return head
        self._head_pos = end
        self.handed += end - start
        return head[start:end]


class _NestedTooDeep(Exception):
    """Raised inside the event stream of a JSON document when a record nests too deep."""


class _RecordTooLarge(Exception):
    """Raised by the reader when one record has been handed more bytes than the record cap."""


# A read of the document handed to ijson holds at most this many "[" or "{" (see _Utf8Reader.read): the
# parser then goes at most this much deeper than the limit before the depth check sees an event, and
# its per-level memory (a path prefix each, growing with the depth) stays in the tens of megabytes.
_MAX_OPENS_PER_READ: Final = 4096

_DEPTH_CHANGE: Final = {"start_map": 1, "start_array": 1, "end_map": -1, "end_array": -1}


def _limited(events: Iterable[tuple[str, str, Any]], reader: _Utf8Reader, level: int) -> Iterator[tuple[str, str, Any]]:
    """Pass parse events through, raising _NestedTooDeep once containers open more than
    MAX_NESTING_DEPTH below ``level`` (where the records sit), and telling the reader each time
    the parser stands between records, which is what its record-size check counts from.

    The checks must sit in the event stream: ijson's memory per open level grows with the depth, so
    a document of nothing but "[" exhausts memory long before any record is built; and a record is
    built whole by the items builder before any field cap could look at it.
    """
    depth = 0
    limit = level + MAX_NESTING_DEPTH
    change = _DEPTH_CHANGE.get
    for event in events:
        step = change(event[1])
        if step:
            depth += step
            if depth > limit:
                raise _NestedTooDeep
        if depth <= level:
            reader.boundary = reader.handed
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


def iter_json(stream: BinaryIO, max_field_bytes: int, max_record_bytes: int) -> Iterator[ParsedRow | BadRow]:
    reader = _Utf8Reader(stream, max_record_bytes)
    first = reader.peek_first_byte()
    shape: _Shape | None = None
    if first == b"[":
        # Records sit one level down, in the top-level array.
        events = _limited(ijson.parse(reader, use_float=True), reader, 1)
        records = ijson.items(events, "item")
    elif first == b"{":
        shape = _Shape()
        # Records sit two levels down, in the object's "tracks" array.
        events = shape.watch(_limited(ijson.parse(reader, use_float=True), reader, 2))
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
            yield check_and_validate(index, record, max_field_bytes, False)
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
    except _RecordTooLarge:
        raise FileRejected(
            f"JSON record {index + 1} is larger than {max_record_bytes} bytes; the file is refused from there"
        ) from None
    if shape is not None and not shape.found:
        raise FileRejected("JSON object has no 'tracks' array")
