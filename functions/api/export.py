"""``/export``: tracks with their profiles, or detections, as NDJSON streamed from a server-side
cursor. The answer starts only once the query runs, so a database failure is a 503, not a cut-off
200; past that point rows are sent as they are read, and memory stays flat."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from functions.api.errors import bad_param
from functions.api.routing import Call
from shared.events import HttpResponse
from shared.services import Services
from shared.store.export import ExportFilters, ExportKind, export_rows, json_line

__all__ = ["NDJSON", "export"]

NDJSON = "application/x-ndjson"
_LINES_PER_CHUNK = 500


def export(call: Call) -> HttpResponse:
    q = call.query
    what = q["what"]
    if what not in ("tracks", "detections"):
        raise bad_param("what", "must be tracks or detections")
    kind: ExportKind = "tracks" if what == "tracks" else "detections"
    if kind == "detections":
        for name in ("artist", "source"):
            if q[name] is not None:
                raise bad_param(name, "filters tracks only")
    filters = ExportFilters(artist=q["artist"], source=q["source"], since=_time(q, "since"), until=_time(q, "until"))
    stream = _Primed(_lines(call.services, kind, filters))
    headers = {"content-type": NDJSON, "cache-control": "no-store", "x-content-type-options": "nosniff"}
    return HttpResponse(status=200, headers=headers, stream=stream)


def _time(query: dict[str, object], name: str) -> datetime | None:
    raw = query[name]
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise bad_param(name, "must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z") from None
    if value.tzinfo is None:
        raise bad_param(name, "must name its time zone (Z or +hh:mm)")
    return value


def _lines(services: Services, kind: ExportKind, filters: ExportFilters) -> Iterator[bytes]:
    with services.db.connection() as conn:
        try:
            chunk: list[bytes] = []
            for row in export_rows(conn, kind, filters):
                chunk.append(json_line(row))
                if len(chunk) >= _LINES_PER_CHUNK:
                    yield b"".join(chunk)
                    chunk.clear()
            if chunk:
                yield b"".join(chunk)
        finally:
            conn.rollback()  # read only; ends the cursor's transaction before the pool takes it back


class _Primed:
    """An iterator that has produced its first chunk already (so the query ran), and whose close()
    closes the generator under it: a client that goes away frees the cursor and its connection."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._first: bytes | None = next(chunks, None)

    def __iter__(self) -> _Primed:
        return self

    def __next__(self) -> bytes:
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        return next(self._chunks)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
