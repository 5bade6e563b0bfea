"""Physical lines of an uploaded file, split from its bytes and decoded as strict UTF-8.

Memory stays bounded by the record, not the file: bytes are read in fixed chunks and split into
lines here rather than through ``io.TextIOWrapper``, so that a decoding error can name the exact
line and byte offset (a text wrapper decodes ahead in chunks and loses both). The UTF-8 byte order
mark is dropped, as ``utf-8-sig`` would.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO, Final

from shared.errors import FileRejected

__all__ = ["BOM", "CHUNK_BYTES", "RECORD_CAP_FACTOR", "Lines"]

# A record (a jsonl line, a CSV physical line or field) may be at most this many times the per-field
# cap. Beyond it a jsonl line is a bad row (skipped without being held in memory) and a CSV file is
# refused: a CSV field that large almost always means an unbalanced quote has swallowed the rest of
# the file, and the parser cannot find the next record boundary again.
RECORD_CAP_FACTOR: Final = 16
CHUNK_BYTES: Final = 1 << 20
BOM: Final = codecs.BOM_UTF8


class Lines:
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
        chunk = read(CHUNK_BYTES)
        # The BOM may straddle reads on a stream that returns short reads.
        while chunk and len(chunk) < len(BOM) and BOM.startswith(chunk):
            more = read(CHUNK_BYTES)
            if not more:
                break
            chunk += more
        if chunk.startswith(BOM):
            chunk = chunk[len(BOM) :]
            self._offset = len(BOM)
            if not chunk:  # the read held nothing but the BOM; that is not the end of the file
                chunk = read(CHUNK_BYTES)
        while chunk:
            yield chunk
            chunk = read(CHUNK_BYTES)

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
