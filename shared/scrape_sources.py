"""Configuration of scrape sources (one ``CONTENTFN_SCRAPE_SOURCES`` JSON list in Settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["FeedFields", "ScrapeSource"]


class FeedFields(BaseModel):
    """Where a generic JSON feed keeps each field (dotted paths into one item)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: str = "items"
    id: str = "id"
    artist: str = "artist"
    title: str = "title"
    lyrics: str = "lyrics"
    next_cursor: str = "next_cursor"


class ScrapeSource(BaseModel):
    """One place to pull tracks from.

    ``genius``: a Genius-compatible API (artist search → the artist's songs → each song's lyrics
    page) for the listed ``artists``. ``json_feed``: a feed answering ``{"items": [...],
    "next_cursor": ...}`` to ``GET url?cursor=...``, fields mapped by ``fields``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: Literal["genius", "json_feed"]
    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    artists: tuple[str, ...] = ()
    token: SecretStr | None = None
    cursor_param: str = "cursor"
    fields: FeedFields = Field(default_factory=FeedFields)
    # Per tick: bounded work, so one slow source cannot hold the schedule.
    max_pages: int = Field(default=5, ge=1, le=1000)
    max_items: int = Field(default=500, ge=1, le=100_000)
