"""``GET /tracks``: the catalogue filtered by what was learned about each track, in pages."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from functions.api.errors import bad_param
from functions.api.filters import FILTER_PARAMS, track_filter
from functions.api.paging import cursor_param, decode_cursor, encode_cursor
from functions.api.params import Param
from functions.api.routing import Call
from shared.store.browse import SORTS, TrackSummary, browse_tracks

__all__ = ["BROWSE_PARAMS", "TrackPage", "list_tracks"]

# A title or artist sort key is the whole lower-cased text (titles hold up to 1,000 characters):
# JSON-escaped at worst 6 bytes a character, then base64, it stays well under this bound.
_MAX_TEXT_KEY = 2000
_MAX_BROWSE_CURSOR = 16384

BROWSE_PARAMS: tuple[Param, ...] = (
    *FILTER_PARAMS,
    Param("sort", str, default="newest", maximum=16, description=f"order: {', '.join(SORTS)}"),
    Param("limit", int, default=50, maximum=500, description="tracks per page"),
    cursor_param(_MAX_BROWSE_CURSOR),
)


class TrackPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[TrackSummary]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")


class _Key(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1, le=2**63 - 1)


class _TimeKey(_Key):
    key: datetime


class _TextKey(_Key):
    key: str = Field(max_length=_MAX_TEXT_KEY)


class _QualityKey(_Key):
    key: int = Field(ge=0, le=10)


# The type of each sort's key; the cursor's list is "tracks:<sort>", so a cursor of one order is
# refused by another.
_KEYS: dict[str, type[_TimeKey] | type[_TextKey] | type[_QualityKey]] = {
    "newest": _TimeKey,
    "oldest": _TimeKey,
    "artist": _TextKey,
    "title": _TextKey,
    "quality": _QualityKey,
}


def list_tracks(call: Call) -> TrackPage:
    sort = call.query["sort"]
    if sort not in SORTS:
        raise bad_param("sort", f"must be one of {', '.join(SORTS)}")
    flt = track_filter(call.query)
    scope, key_type = f"tracks:{sort}", _KEYS[sort]
    after = decode_cursor(call.query["cursor"], scope, key_type)
    with call.services.db.connection() as conn:
        items, last = browse_tracks(
            conn, flt, sort=sort, limit=call.query["limit"], after=None if after is None else (after.key, after.id)
        )
        conn.commit()
    next_cursor = (
        None if last is None else encode_cursor(scope, key_type.model_validate({"key": last[0], "id": last[1]}))
    )
    return TrackPage(items=items, next_cursor=next_cursor)
