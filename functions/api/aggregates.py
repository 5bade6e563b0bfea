"""``/artists/{name}`` and ``/stats/analyses``: what was learned, aggregated per artist and over the
catalogue, with the cost side of the analyses as live figures from the store."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict

from functions.api.errors import not_found
from functions.api.routing import Call
from shared.services import Services
from shared.store.aggregates import analysis_stats, artist_profile

__all__ = ["AnalysisStatsView", "ArtistView", "get_artist", "stats_analyses"]


class _Answer(BaseModel):
    # Served as they are: a key the model does not declare is refused, not published undocumented.
    model_config = ConfigDict(extra="forbid")


class ArtistTrack(_Answer):
    id: int
    title: str


class ThemeCount(_Answer):
    theme: str
    tracks: int


class NearArtist(_Answer):
    artist: str
    similarity: float


class YearThemes(_Answer):
    year: int
    tracks: int  # the artist's analysed tracks released that year
    themes: dict[str, int]  # each of the artist's top themes → those of them holding it


class ArtistView(_Answer):
    """One artist: its tracks (the first ``limit`` by id), the distributions of their current
    profiles, mean lyric features, and the artists whose embedding centroids are nearest."""

    artist: str
    tracks: int
    analysed: int
    items: list[ArtistTrack]
    quality: dict[str, int]
    sentiment: dict[str, int]
    top_themes: list[ThemeCount]
    feature_means: dict[str, float]
    model: str | None
    nearest_artists: list[NearArtist]
    themes_by_year: list[YearThemes]  # oldest release year first
    undated: int  # analysed tracks with no known release year (not in themes_by_year)


class LlmDayView(_Answer):
    day: date
    calls: int
    ok: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    token_limit: int | None
    budget_used: int | None
    budget_share: float | None  # budget_used / token_limit
    refused: int | None


class AnalysisStatsView(_Answer):
    tracks: int
    analysed: int
    quality: dict[str, int]
    sentiment: dict[str, int]
    top_themes: list[ThemeCount]
    answered_by: dict[str, int]  # cache / rules / distilled / llm
    answered_share: dict[str, float]
    cache_hit_ratio: float | None
    fallbacks: int
    llm_days: list[LlmDayView]


def get_artist(call: Call) -> ArtistView:
    svc = call.services
    with svc.db.connection() as conn:
        model = _search_model(svc, conn)
        found = artist_profile(
            conn, call.name, model=model, track_limit=call.query["limit"], neighbours=call.query["k"]
        )
        conn.commit()
    if found is None:
        raise not_found("artist")
    values = asdict(found)
    values["items"] = values.pop("track_list")
    return ArtistView(**values, model=model)


def _search_model(svc: Services, conn: psycopg.Connection[Any]) -> str | None:
    """The model search uses when this process loaded it; else the model most tracks are embedded with."""
    if svc.has_embedder:
        return svc.embedder.model_key
    row = conn.execute("SELECT model FROM embeddings GROUP BY model ORDER BY count(*) DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def stats_analyses(call: Call) -> AnalysisStatsView:
    with call.services.db.connection() as conn:
        found = analysis_stats(conn, days=call.query["days"])
        conn.commit()
    total = sum(found.answered_by.values())
    values = asdict(found)
    for day in values["llm_days"]:
        limit, used = day["token_limit"], day["budget_used"]
        day["budget_share"] = round(used / limit, 4) if limit and used is not None else None
    return AnalysisStatsView(
        **values,
        answered_share={k: round(v / total, 4) for k, v in found.answered_by.items()} if total else {},
        cache_hit_ratio=round(found.answered_by.get("cache", 0) / total, 4) if total else None,
    )
