"""Domain models shared by every function and adapter."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_SOURCE",
    "SearchHit",
    "Track",
    "TrackIn",
    "content_hash",
    "normalize_text",
]

DEFAULT_SOURCE = "upload"


def normalize_text(text: str) -> str:
    """Unicode NFC, case-folded, whitespace collapsed: two spellings of one text hash alike."""
    # str.split() with no separator splits on exactly the characters `\s` matches and drops the
    # ends: the same result as a regex substitution plus strip, about three times faster.
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def content_hash(artist: str, title: str, lyrics: str) -> str:
    """sha256 of the normalized fields; the identity of a track's content."""
    joined = "\x1f".join(normalize_text(part) for part in (artist, title, lyrics))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


class TrackIn(BaseModel):
    """One validated input row. ``source_id`` defaults to the content hash."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    artist: str = Field(min_length=1, max_length=500)
    title: str = Field(min_length=1, max_length=1000)
    lyrics: str = Field(min_length=1)
    source: str = Field(default=DEFAULT_SOURCE, min_length=1, max_length=200)
    source_id: str | None = Field(default=None, max_length=500)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("source_id", mode="before")
    @classmethod
    def _id_to_text(cls, value: object) -> object:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise ValueError("must be a string or an integer")
        if isinstance(value, int | float):
            return str(value)
        return value

    @field_validator("artist", "title", "lyrics", "source", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL character")
        return value

    @property
    def hash(self) -> str:
        return content_hash(self.artist, self.title, self.lyrics)

    @property
    def key(self) -> tuple[str, str]:
        """The upsert key: (source, source_id), falling back to the content hash."""
        return self.source, self.source_id or self.hash


class Track(BaseModel):
    id: int
    source: str
    source_id: str
    artist: str
    title: str
    lyrics: str
    metadata: dict[str, Any]
    content_hash: str
    created_at: datetime
    updated_at: datetime


class SearchHit(BaseModel):
    id: int
    artist: str
    title: str
    score: float
    snippet: str
