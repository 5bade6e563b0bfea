"""A Genius-compatible lyrics API and a generic JSON feed, with faults on demand.

Genius-compatible: ``GET /search?q=`` → artist hits; ``GET /artists/{id}/songs?page=&per_page=`` →
songs with ``next_page``; each song's ``url`` is an HTML lyrics page (``/lyrics/{id}``) whose text
sits in ``<div data-lyrics-container="true">`` blocks. JSON feed: ``GET /feed?cursor=`` →
``{"items": [...], "next_cursor": ...}``.

Faults: ``throttle[path_prefix] = n`` answers the next n requests there with 429 + Retry-After;
``errors[path_prefix] = n`` with 500; ``malformed`` song ids get a page without lyrics; ``/redirect``
sends a 302 to ``redirect_to``; ``/endless`` streams a body that does not end (bounded at 64 MiB).
"""

from __future__ import annotations

import html
import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers import Handled, LocalServer, Seen

__all__ = ["SourceServer"]

_SONGS = re.compile(r"^/artists/(\d+)/songs$")
_LYRICS = re.compile(r"^/lyrics/(\d+)$")


class SourceServer(LocalServer):
    def __init__(self, tracks: list[dict[str, Any]], *, per_page: int = 5, retry_after_s: int = 1) -> None:
        super().__init__()
        self.tracks = tracks
        self.per_page = per_page
        self.retry_after_s = retry_after_s
        self.artists: dict[int, str] = {}
        self.songs: dict[int, dict[str, Any]] = {}
        for i, t in enumerate(tracks, start=1):
            artist_id = next((k for k, v in self.artists.items() if v == t["artist"]), None)
            if artist_id is None:
                artist_id = len(self.artists) + 1
                self.artists[artist_id] = t["artist"]
            self.songs[i] = {**t, "artist_id": artist_id}
        self.throttle: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.malformed: set[int] = set()
        self.redirect_to = ""

    def _fault(self, path: str) -> Handled | None:
        for prefix, left in list(self.throttle.items()):
            if path.startswith(prefix) and left > 0:
                self.throttle[prefix] = left - 1
                return Handled.json({"error": "slow down"}, 429, {"retry-after": str(self.retry_after_s)})
        for prefix, left in list(self.errors.items()):
            if path.startswith(prefix) and left > 0:
                self.errors[prefix] = left - 1
                return Handled.json({"error": "boom"}, 500)
        return None

    def handle(self, seen: Seen, handler: BaseHTTPRequestHandler) -> Handled | None:
        fault = self._fault(seen.path)
        if fault is not None:
            return fault
        if seen.path == "/search":
            q = (seen.query.get("q") or [""])[0].lower()
            hits = [
                {"type": "song", "result": {"primary_artist": {"id": aid, "name": name}}}
                for aid, name in self.artists.items()
                if name.lower() == q
            ]
            return Handled.json({"meta": {"status": 200}, "response": {"hits": hits}})
        m = _SONGS.match(seen.path)
        if m:
            return self._songs(int(m.group(1)), int((seen.query.get("page") or ["1"])[0]))
        m = _LYRICS.match(seen.path)
        if m:
            return self._lyrics(int(m.group(1)))
        if seen.path == "/feed":
            return self._feed((seen.query.get("cursor") or [""])[0])
        if seen.path == "/redirect":
            return Handled(302, b"", {"location": self.redirect_to})
        if seen.path == "/endless":
            self._endless(handler)
            return None
        return Handled.json({"error": "not found"}, 404)

    def _songs(self, artist_id: int, page: int) -> Handled:
        mine = [(sid, s) for sid, s in self.songs.items() if s["artist_id"] == artist_id]
        start = (page - 1) * self.per_page
        chunk = mine[start : start + self.per_page]
        songs = [
            {
                "id": sid,
                "title": s["title"],
                "url": f"{self.url}/lyrics/{sid}",
                "primary_artist": {"id": artist_id, "name": s["artist"]},
            }
            for sid, s in chunk
        ]
        next_page = page + 1 if start + self.per_page < len(mine) else None
        return Handled.json({"meta": {"status": 200}, "response": {"songs": songs, "next_page": next_page}})

    def _lyrics(self, song_id: int) -> Handled:
        song = self.songs.get(song_id)
        if song is None:
            return Handled(404, b"<html>no such song</html>", content_type="text/html")
        if song_id in self.malformed:
            return Handled(200, b"<html><body><div class='nothing'>", content_type="text/html")
        lines = [html.escape(line) for line in song["lyrics"].split("\n")]
        half = len(lines) // 2
        blocks = "".join(
            f'<div data-lyrics-container="true" class="Lyrics__Container">{"<br/>".join(part)}</div>'
            for part in (lines[:half], lines[half:])
            if part
        )
        page = f"<html><head><title>{html.escape(song['title'])}</title></head><body><h1>x</h1>{blocks}</body></html>"
        return Handled(200, page.encode(), content_type="text/html; charset=utf-8")

    def _feed(self, cursor: str) -> Handled:
        start = int(cursor) if cursor.isdigit() else 0
        chunk = list(self.songs.items())[start : start + self.per_page]
        items = [
            {"id": f"feed-{sid}", "artist": s["artist"], "title": s["title"], "lyrics": s["lyrics"]} for sid, s in chunk
        ]
        nxt = start + len(chunk)
        return Handled(200, json.dumps({"items": items, "next_cursor": str(nxt)}).encode())

    def _endless(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        chunk = b"[" + b"0," * 8191
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        for _ in range((64 * 1024 * 1024) // len(chunk)):  # bounded: stops by itself at 64 MiB
            if self.stopping.is_set():
                return
            try:
                handler.wfile.write(frame)
            except (BrokenPipeError, ConnectionResetError):
                return
        handler.close_connection = True
