"""Source adapters: a Genius-compatible lyrics API and generic JSON feeds.

Each ``pull(cursor)`` does a bounded amount of work (``max_pages``, ``max_items``) and returns the
items it found, how many it had to skip and the cursor to resume from. Per-item problems (a
malformed lyrics page, a refused or oversized page, a 404) skip that item; a source that stays
unavailable ends the pull early with the progress made so far, so the next tick resumes there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from pydantic import ValidationError

from shared.models import TrackIn
from shared.net.client import SafeHttpClient
from shared.net.errors import ResponseTooLarge, UpstreamRejected, UpstreamUnavailable, UrlRefused
from shared.scrape_sources import ScrapeSource

__all__ = ["Pull", "extract_lyrics", "pull_genius", "pull_json_feed"]

log = logging.getLogger(__name__)
_ITEM_ERRORS = (UpstreamRejected, ResponseTooLarge, UrlRefused)


@dataclass
class Pull:
    items: list[TrackIn] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)  # the page each item was read from, index for index
    skipped: list[str] = field(default_factory=list)  # reasons, one per skipped item
    cursor: dict[str, Any] = field(default_factory=dict)
    pages: int = 0
    error: str | None = None  # the source became unavailable part-way


class _LyricsParser(HTMLParser):
    """Text inside ``<div data-lyrics-container="true">`` blocks; ``<br>`` becomes a line break."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.parts: list[str] = []
        self.blocks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            if tag == "br":
                self.parts.append("\n")
            elif tag == "div":
                self.depth += 1
        elif tag == "div" and ("data-lyrics-container", "true") in attrs:
            self.depth = 1
            self.blocks += 1
            if self.parts and not self.parts[-1].endswith("\n"):
                self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth and tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "div":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def extract_lyrics(page: str) -> str | None:
    parser = _LyricsParser()
    parser.feed(page)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    text = "\n".join(line for line in lines if line)
    return text or None


def _auth(source: ScrapeSource, default_token: str | None) -> dict[str, str]:
    token = source.token.get_secret_value() if source.token else default_token
    return {"authorization": f"Bearer {token}"} if token else {}


def _find_artist(http: SafeHttpClient, source: ScrapeSource, name: str, headers: dict[str, str]) -> int | None:
    doc = http.get(f"{source.url.rstrip('/')}/search", params={"q": name}, headers=headers).json()
    for hit in ((doc or {}).get("response") or {}).get("hits") or []:
        artist = ((hit or {}).get("result") or {}).get("primary_artist") or {}
        if str(artist.get("name", "")).casefold() == name.casefold() and isinstance(artist.get("id"), int):
            return int(artist["id"])
    return None


def pull_genius(
    http: SafeHttpClient, source: ScrapeSource, cursor: dict[str, Any], *, token: str | None = None
) -> Pull:
    """Artist → songs (paged) → lyrics page, for each configured artist.

    Cursor: ``{"artists": {name: {"id": int, "page": int}}}``. When an artist's last page is reached
    the cursor stays on it, so later ticks re-read only that page to pick up new songs.
    """
    pull = Pull(cursor={"artists": dict((cursor or {}).get("artists") or {})})
    headers = _auth(source, token)
    base = source.url.rstrip("/")
    try:
        for name in source.artists:
            state = dict(pull.cursor["artists"].get(name) or {})
            if not isinstance(state.get("id"), int):
                artist_id = _find_artist(http, source, name, headers)
                if artist_id is None:
                    pull.skipped.append(f"artist not found: {name}")
                    continue
                state = {"id": artist_id, "page": 1}
            page = int(state.get("page") or 1)
            while pull.pages < source.max_pages and len(pull.items) < source.max_items:
                doc = http.get(
                    f"{base}/artists/{state['id']}/songs", params={"page": page, "per_page": 20}, headers=headers
                ).json()
                pull.pages += 1
                response = (doc or {}).get("response") or {}
                for song in response.get("songs") or []:
                    _add_song(http, song, name, source, pull)
                next_page = response.get("next_page")
                if not isinstance(next_page, int) or next_page <= page:
                    break
                page = next_page
                state["page"] = page
                pull.cursor["artists"][name] = dict(state)
            pull.cursor["artists"][name] = state
    except UpstreamUnavailable as exc:
        pull.error = str(exc)
    except UpstreamRejected as exc:
        pull.error = f"source refused the request: {exc}"
    return pull


def _add_song(http: SafeHttpClient, song: Any, artist_name: str, source: ScrapeSource, pull: Pull) -> None:
    if not isinstance(song, dict) or not song.get("url") or song.get("id") is None:
        pull.skipped.append("song entry without id or url")
        return
    try:
        fetched = http.get(str(song["url"]), headers={"accept": "text/html"})
        page = fetched.text
    except _ITEM_ERRORS as exc:
        pull.skipped.append(f"song {song.get('id')}: {type(exc).__name__}")
        return
    lyrics = extract_lyrics(page)
    if lyrics is None:
        pull.skipped.append(f"song {song.get('id')}: no lyrics on the page")
        return
    artist = str((song.get("primary_artist") or {}).get("name") or artist_name)
    try:
        pull.items.append(
            TrackIn(
                artist=artist,
                title=str(song.get("title") or ""),
                lyrics=lyrics,
                source=source.name,
                source_id=str(song["id"]),
                metadata={"url": str(song["url"]), "scraped": source.kind},
            )
        )
        pull.urls.append(fetched.url)
    except ValidationError:
        pull.skipped.append(f"song {song.get('id')}: invalid fields")


def _dig(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def pull_json_feed(http: SafeHttpClient, source: ScrapeSource, cursor: dict[str, Any]) -> Pull:
    """``GET url?<cursor_param>=<cursor>`` page after page. Cursor: ``{"cursor": str | None}``."""
    f = source.fields
    position = (cursor or {}).get("cursor")
    pull = Pull(cursor={"cursor": position})
    try:
        while pull.pages < source.max_pages and len(pull.items) < source.max_items:
            params = {source.cursor_param: position} if position else None
            fetched = http.get(source.url, params=params, headers=_auth(source, None))
            doc = fetched.json()
            pull.pages += 1
            items = _dig(doc, f.items)
            if not isinstance(items, list):
                pull.skipped.append("page without an item list")
                break
            for item in items:
                try:
                    pull.items.append(
                        TrackIn(
                            artist=_dig(item, f.artist),
                            title=_dig(item, f.title),
                            lyrics=_dig(item, f.lyrics),
                            source=source.name,
                            source_id=_dig(item, f.id),
                            metadata={"scraped": source.kind},
                        )
                    )
                    pull.urls.append(fetched.url)
                except (ValidationError, TypeError):
                    pull.skipped.append("item with missing or invalid fields")
            nxt = _dig(doc, f.next_cursor)
            if not items or nxt in (None, "") or str(nxt) == position:
                break
            position = str(nxt)
            pull.cursor = {"cursor": position}
    except UpstreamUnavailable as exc:
        pull.error = str(exc)
    except UpstreamRejected as exc:
        pull.error = f"feed refused the request: {exc}"
    return pull
