"""Aggregates over what was learned: one artist's profile, and the catalogue's analyses and their cost.

"The" profile of a track is its current analysis (:mod:`shared.store.current_analysis`), the same one
browse filters on and export writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from shared.store.current_analysis import CURRENT_ANALYSIS

__all__ = [
    "AnalysisStats",
    "ArtistProfile",
    "LlmDayCost",
    "analysis_stats",
    "answer_source",
    "artist_profile",
]

_TOP_THEMES = 10


def answer_source(analyzer: str, cached: bool) -> str:
    """Who answered an analysis: ``cache``, ``llm``, ``distilled`` or ``rules``."""
    if cached:
        return "cache"
    return analyzer.split(":", 1)[0] if analyzer.startswith(("llm:", "distilled:")) else "rules"


@dataclass(frozen=True)
class ArtistProfile:
    artist: str
    tracks: int
    track_list: list[dict[str, Any]]  # id and title, the first ``limit`` by id
    analysed: int
    quality: dict[str, int]  # "1".."10" → tracks
    sentiment: dict[str, int]
    top_themes: list[dict[str, Any]]  # theme, tracks
    feature_means: dict[str, float]  # numeric lyric features averaged; booleans as the share true
    nearest_artists: list[dict[str, Any]]  # artist, similarity of the centroids (cosine)
    # per release year, oldest first: year, tracks analysed, and how many of them hold each top theme
    themes_by_year: list[dict[str, Any]]
    undated: int  # analysed tracks with no release year known


def artist_profile(
    conn: psycopg.Connection[Any], name: str, *, model: str | None, track_limit: int = 100, neighbours: int = 5
) -> ArtistProfile | None:
    """Everything learned about one artist (case-insensitive name), or None if no track has it."""
    lname = name.lower()
    rows = conn.execute(
        "SELECT id, title, artist FROM tracks WHERE lower(artist) = %s ORDER BY id", (lname,)
    ).fetchall()
    if not rows:
        return None
    profiles = conn.execute(
        f"SELECT p.result, {_RELEASE_YEAR} FROM tracks t {CURRENT_ANALYSIS}"
        " LEFT JOIN enrichments m ON m.track_id = t.id AND m.kind = 'metadata'"
        " WHERE lower(t.artist) = %s AND p.result IS NOT NULL",
        (lname,),
    ).fetchall()
    quality, sentiment, themes = _distributions([r[0] for r in profiles])
    by_year, undated = _themes_by_year(profiles, [t["theme"] for t in themes])
    return ArtistProfile(
        artist=str(rows[0][2]),
        tracks=len(rows),
        track_list=[{"id": int(i), "title": str(t)} for i, t, _ in rows[:track_limit]],
        analysed=len(profiles),
        quality=quality,
        sentiment=sentiment,
        top_themes=themes,
        feature_means=_feature_means(conn, lname),
        nearest_artists=[] if model is None else _nearest_artists(conn, lname, model, neighbours),
        themes_by_year=by_year,
        undated=undated,
    )


# A track's release year: the year its own row gave (``year`` or ``release_date``), else the one the
# catalogue lookup found; null when neither holds four leading digits.
_RELEASE_YEAR = (
    "coalesce(substring(t.metadata->>'year' from '^[0-9]{4}'), substring(t.metadata->>'release_date' from '^[0-9]{4}'),"
    " substring(m.data->>'release_date' from '^[0-9]{4}'))::int AS year"
)


def _themes_by_year(rows: list[tuple[Any, ...]], top: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Per release year (oldest first): the tracks analysed and, for each of the top themes, how many
    of them hold it; and how many analysed tracks have no year."""
    years: dict[int, dict[str, Any]] = {}
    undated = 0
    for result, year in rows:
        if year is None:
            undated += 1
            continue
        entry = years.setdefault(int(year), {"year": int(year), "tracks": 0, "themes": dict.fromkeys(top, 0)})
        entry["tracks"] += 1
        for theme in {str(t) for t in ((result.get("profile") or {}).get("themes") or [])}:
            if theme in entry["themes"]:
                entry["themes"][theme] += 1
    return [years[y] for y in sorted(years)], undated


def _distributions(results: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, int], list[dict[str, Any]]]:
    quality = {str(q): 0 for q in range(1, 11)}
    sentiment: dict[str, int] = {}
    themes: dict[str, int] = {}
    for result in results:
        profile = result.get("profile") or {}
        q = profile.get("quality")
        if isinstance(q, int) and str(q) in quality:
            quality[str(q)] += 1
        s = profile.get("sentiment")
        if isinstance(s, str):
            sentiment[s] = sentiment.get(s, 0) + 1
        for theme in profile.get("themes") or []:
            themes[str(theme)] = themes.get(str(theme), 0) + 1
    top = sorted(themes.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_THEMES]
    return quality, sentiment, [{"theme": t, "tracks": n} for t, n in top]


def _feature_means(conn: psycopg.Connection[Any], lname: str) -> dict[str, float]:
    rows = conn.execute(
        """
        SELECT f.key,
               avg(CASE jsonb_typeof(f.value) WHEN 'number' THEN (f.value #>> '{}')::float8
                                              WHEN 'boolean' THEN (f.value #>> '{}')::boolean::int END)
        FROM tracks t JOIN enrichments e ON e.track_id = t.id AND e.kind = 'features'
        CROSS JOIN LATERAL jsonb_each(e.data) f
        WHERE lower(t.artist) = %s AND jsonb_typeof(f.value) IN ('number', 'boolean')
        GROUP BY f.key ORDER BY f.key
        """,
        (lname,),
    ).fetchall()
    return {str(k): round(float(v), 4) for k, v in rows if v is not None}


def _nearest_artists(conn: psycopg.Connection[Any], lname: str, model: str, k: int) -> list[dict[str, Any]]:
    # Centroids of every artist's vectors under one model: an exact scan, but one vector per track
    # summed once, and the catalogue's artists are far fewer than its tracks.
    rows = conn.execute(
        """
        WITH centroids AS (
            SELECT lower(t.artist) AS lname, min(t.artist) AS artist, avg(e.embedding) AS c
            FROM embeddings e JOIN tracks t ON t.id = e.track_id
            WHERE e.model = %(model)s GROUP BY lower(t.artist))
        SELECT o.artist, 1 - (o.c <=> me.c) AS similarity
        FROM centroids o, centroids me
        WHERE me.lname = %(lname)s AND o.lname <> %(lname)s
        ORDER BY o.c <=> me.c LIMIT %(k)s
        """,
        {"model": model, "lname": lname, "k": k},
    ).fetchall()
    return [{"artist": str(a), "similarity": round(float(s), 4)} for a, s in rows]


@dataclass(frozen=True)
class LlmDayCost:
    day: date
    calls: int
    ok: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    token_limit: int | None  # the day's budget, when one was set
    budget_used: int | None
    refused: int | None


@dataclass(frozen=True)
class AnalysisStats:
    tracks: int
    analysed: int
    quality: dict[str, int]
    sentiment: dict[str, int]
    top_themes: list[dict[str, Any]]
    answered_by: dict[str, int]  # cache / rules / distilled / llm → tracks whose latest analysis it answered
    fallbacks: int
    llm_days: list[LlmDayCost]


def analysis_stats(conn: psycopg.Connection[Any], *, days: int = 7) -> AnalysisStats:
    """The catalogue's profile distributions, who answered its analyses, and LLM cost per day."""
    tracks_row = conn.execute("SELECT count(*) FROM tracks").fetchone()
    profiles = conn.execute(f"SELECT p.result FROM tracks t {CURRENT_ANALYSIS} WHERE p.result IS NOT NULL").fetchall()
    quality, sentiment, themes = _distributions([r[0] for r in profiles])
    # The analyze stage records who answered each track's latest analysis, and whether from cache.
    answered: dict[str, int] = {}
    fallbacks = 0
    for analyzer, cached, fallback, n in conn.execute(
        "SELECT detail->>'analyzer', coalesce((detail->>'cached')::boolean, false),"
        " coalesce((detail->>'fallback')::boolean, false), count(*)"
        " FROM ledger WHERE stage = 'analyzed' AND status = 'ok' GROUP BY 1, 2, 3"
    ).fetchall():
        source = answer_source(str(analyzer or "rules"), bool(cached))
        answered[source] = answered.get(source, 0) + int(n)
        fallbacks += int(n) if fallback else 0
    llm_days = [
        LlmDayCost(
            day=d,
            calls=int(calls),
            ok=int(ok),
            tokens_in=int(tin),
            tokens_out=int(tout),
            cost_usd=round(float(cost), 6),
            token_limit=None if limit is None else int(limit),
            budget_used=None if used is None else int(used),
            refused=None if refused is None else int(refused),
        )
        for d, calls, ok, tin, tout, cost, limit, used, refused in conn.execute(
            """
            WITH days AS (
                SELECT created_at::date AS day, count(*) AS calls, count(*) FILTER (WHERE outcome = 'ok') AS ok,
                       sum(tokens_in) AS tin, sum(tokens_out) AS tout, sum(cost_usd) AS cost
                FROM llm_calls WHERE created_at >= current_date - %(back)s GROUP BY 1)
            SELECT coalesce(d.day, b.day), coalesce(d.calls, 0), coalesce(d.ok, 0), coalesce(d.tin, 0),
                   coalesce(d.tout, 0), coalesce(d.cost, 0), b.token_limit, b.used, b.refused
            FROM days d FULL JOIN (SELECT * FROM llm_budget WHERE day >= current_date - %(back)s) b
                 ON b.day = d.day
            ORDER BY 1 DESC
            """,
            {"back": days - 1},
        ).fetchall()
    ]
    return AnalysisStats(
        tracks=int(tracks_row[0]) if tracks_row else 0,
        analysed=len(profiles),
        quality=quality,
        sentiment=sentiment,
        top_themes=themes,
        answered_by=answered,
        fallbacks=fallbacks,
        llm_days=llm_days,
    )
