"""Browse tracks by what was learned about them: filters, sorts and keyset pages.

A track's *profile* here is its current analysis (:mod:`shared.store.current_analysis`; by the named
analyzer, when one is named): filters on sentiment, theme and quality test that one analysis, and a listed track
shows it, so what a page shows always agrees with why the track is on it. An analysis of an older
version of the text no longer describes the track and is ignored. ``explicit`` comes from the
algorithmic features enrichment; a track not enriched yet matches neither ``true`` nor ``false``.

The same filter (:class:`TrackFilter`) serves browse, search, similar and recommendations: it
compiles to a join and a ``WHERE`` over ``tracks t`` (:func:`filter_sql`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.intel.profile import Sentiment
from shared.store.current_analysis import current_analysis_join

__all__ = [
    "SORTS",
    "ProfileSummary",
    "SortKey",
    "TrackFilter",
    "TrackSummary",
    "browse_tracks",
    "filter_sql",
]

Sort = Literal["newest", "oldest", "artist", "title", "quality"]
SORTS: tuple[str, ...] = ("newest", "oldest", "artist", "title", "quality")


# Where a page ends: the sort key of its last track (a time, a lower-cased text or a quality) and its id.
SortKey = tuple[datetime | str | int, int]


class TrackFilter(BaseModel):
    """What a track must be to be listed, searched or recommended. Every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artist: str | None = Field(default=None, min_length=1, max_length=500, description="case-insensitive")
    sentiment: Sentiment | None = None
    theme: str | None = Field(default=None, min_length=1, max_length=60, description="one theme label")
    quality_min: int | None = Field(default=None, ge=1, le=10)
    quality_max: int | None = Field(default=None, ge=1, le=10)
    explicit: bool | None = Field(default=None, description="from the lyric features")
    analyzer: str | None = Field(default=None, min_length=1, max_length=100, description="whose profile counts")
    source: str | None = Field(default=None, min_length=1, max_length=200)
    since: datetime | None = Field(default=None, description="added at or after")
    until: datetime | None = Field(default=None, description="added before")

    @field_validator("theme")
    @classmethod
    def _theme_as_stored(cls, value: str | None) -> str | None:
        # Analyzers store theme labels lower-cased with single spaces (Profile._clean_themes).
        return None if value is None else " ".join(value.split()).lower()

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # A time without an offset is read as UTC, not as the database session's zone.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _ranges_in_order(self) -> TrackFilter:
        if self.quality_min is not None and self.quality_max is not None and self.quality_min > self.quality_max:
            raise ValueError("quality_min is above quality_max")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since is not before until")
        return self

    @property
    def on_profile(self) -> bool:
        return any(v is not None for v in (self.sentiment, self.theme, self.quality_min, self.quality_max))

    @property
    def empty(self) -> bool:
        return all(v is None for v in self.model_dump().values())


def _profile_join(flt: TrackFilter) -> tuple[sql.Composable, list[Any]]:
    join = sql.SQL(current_analysis_join(by_analyzer=flt.analyzer is not None))
    return join, ([flt.analyzer] if flt.analyzer is not None else [])


def filter_sql(
    flt: TrackFilter, *, exclude: Sequence[int] = (), with_profile: bool = False
) -> tuple[sql.Composable, sql.Composable, list[Any], list[Any]]:
    """(joins, where, join params, where params) over ``tracks t``.

    The profile join (alias ``p``: analyzer, profile jsonb) is added when a filter needs it or when
    ``with_profile`` asks for it to be shown; ``where`` is ``true`` for an empty filter.
    """
    joins: list[sql.Composable] = []
    join_params: list[Any] = []
    if with_profile or flt.on_profile or flt.analyzer is not None:
        join, join_params = _profile_join(flt)
        joins.append(join)
    conds: list[sql.Composable] = []
    params: list[Any] = []

    def cond(text: str, *values: Any) -> None:
        conds.append(sql.SQL(text))
        params.extend(values)

    if flt.artist is not None:
        cond("lower(t.artist) = lower(%s)", flt.artist)
    if flt.source is not None:
        cond("t.source = %s", flt.source)
    if flt.since is not None:
        cond("t.created_at >= %s", flt.since)
    if flt.until is not None:
        cond("t.created_at < %s", flt.until)
    if flt.analyzer is not None:
        cond("p.analyzer IS NOT NULL")
    if flt.sentiment is not None:
        cond("p.profile ->> 'sentiment' = %s", flt.sentiment)
    if flt.theme is not None:
        cond("p.profile -> 'themes' ? %s", flt.theme)
    if flt.quality_min is not None:
        cond("(p.profile ->> 'quality')::int >= %s", flt.quality_min)
    if flt.quality_max is not None:
        cond("(p.profile ->> 'quality')::int <= %s", flt.quality_max)
    if flt.explicit is not None:
        cond(
            "EXISTS (SELECT 1 FROM enrichments en WHERE en.track_id = t.id AND en.kind = 'features'"
            " AND (en.data ->> 'explicit')::boolean = %s)",
            flt.explicit,
        )
    if exclude:
        cond("t.id <> ALL(%s)", list(exclude))
    where = sql.SQL(" AND ").join(conds) if conds else sql.SQL("true")
    return sql.SQL("").join(joins), where, join_params, params


# -- listing -----------------------------------------------------------------------------------------


class ProfileSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    analyzer: str
    sentiment: str
    themes: list[str]
    quality: int


class TrackSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    source: str
    source_id: str
    artist: str
    title: str
    created_at: datetime
    updated_at: datetime
    profile: ProfileSummary | None = Field(description="the current analysis, if any")
    explicit: bool | None = Field(description="from the lyric features; null until enriched")


# sort -> (key expression, direction, SQL type of the key for the cursor's value)
_SORT_KEYS: dict[str, tuple[str, str, str]] = {
    "newest": ("t.created_at", "DESC", "timestamptz"),
    "oldest": ("t.created_at", "ASC", "timestamptz"),
    "artist": ("lower(t.artist)", "ASC", "text"),
    "title": ("lower(t.title)", "ASC", "text"),
    # Unanalysed tracks (no profile) come last.
    "quality": ("coalesce((p.profile ->> 'quality')::int, 0)", "DESC", "int"),
}


def browse_tracks(
    conn: psycopg.Connection[Any], flt: TrackFilter, *, sort: str, limit: int, after: SortKey | None
) -> tuple[list[TrackSummary], SortKey | None]:
    """One page of tracks matching ``flt`` in ``sort`` order, after the track whose key is ``after``
    (keyset: stable under concurrent inserts, and as fast on the thousandth page as on the first),
    and the key of its last track when more follow (None on the last page)."""
    key, direction, kind = _SORT_KEYS[sort]
    joins, where, join_params, params = filter_sql(flt, with_profile=True)
    keyset: sql.Composable = sql.SQL("")
    keyset_params: list[Any] = []
    if after is not None:
        value, after_id = after
        op = "<" if direction == "DESC" else ">"
        keyset = sql.SQL(" AND ({}, t.id) {} (%s::{}, %s)").format(sql.SQL(key), sql.SQL(op), sql.SQL(kind))
        keyset_params = [value, after_id]
    query = sql.SQL(
        "SELECT t.id, t.source, t.source_id, t.artist, t.title, t.created_at, t.updated_at,"
        " p.analyzer, p.profile, f.explicit, {key}"
        " FROM tracks t{joins}"
        " LEFT JOIN LATERAL (SELECT (en.data ->> 'explicit')::boolean AS explicit FROM enrichments en"
        " WHERE en.track_id = t.id AND en.kind = 'features') f ON true"
        " WHERE {where}{keyset} ORDER BY {key} {dir}, t.id {dir} LIMIT %s"
    ).format(key=sql.SQL(key), joins=joins, where=where, keyset=keyset, dir=sql.SQL(direction))
    rows = conn.execute(query, [*join_params, *params, *keyset_params, limit + 1]).fetchall()
    items = [_summary(r) for r in rows[:limit]]
    last: SortKey | None = (rows[limit - 1][10], rows[limit - 1][0]) if len(rows) > limit else None
    return items, last


def _summary(r: Sequence[Any]) -> TrackSummary:
    profile = None
    if r[7] is not None and isinstance(r[8], dict):
        p = r[8]
        profile = ProfileSummary(
            analyzer=r[7], sentiment=p["sentiment"], themes=list(p.get("themes", [])), quality=int(p["quality"])
        )
    return TrackSummary(
        id=r[0],
        source=r[1],
        source_id=r[2],
        artist=r[3],
        title=r[4],
        created_at=r[5],
        updated_at=r[6],
        profile=profile,
        explicit=r[9],
    )
