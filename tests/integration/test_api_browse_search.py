"""Browse (``GET /tracks``), search modes and filters, similar with filters, ``POST /recommend``:
through the real HTTP server on the real database, tracks ingested and embedded by the real
functions and the real model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.api.browse import TrackPage
from functions.api.core import Api
from functions.api.recommend import Recommendations
from functions.api.tracks import SearchResults, SimilarTracks
from functions.embed.core import ensure_index, run_embed_batch
from functions.enrich.core import enrich_track
from functions.ingest.core import handle_object_created
from local.server import ApiServer
from shared.embedder.base import Embedder
from shared.events import ObjectCreated
from shared.intel.profile import Analysis, Profile
from shared.intel.store import save_analysis
from shared.models import TrackIn
from shared.services import Services
from shared.store.tracks import upsert_tracks

# (artist, title, lyrics, rules profile: sentiment, themes, quality)
TRACKS: list[tuple[str, str, str, str, list[str], int]] = [
    (
        "Harbor Lights",
        "Salt Wind",
        "The sails are full, the harbor fades behind\nwaves crash on the bow, the open sea is mine",
        "positive",
        ["sea", "travel"],
        8,
    ),
    (
        "Harbor Lights",
        "Deep Blue",
        "Anchors up, we ride the rolling tide\nthe ocean sings to sailors far and wide",
        "neutral",
        ["sea"],
        5,
    ),
    (
        "Neon Avenue",
        "Downtown Nights",
        "City lights and taxis on the avenue\ndancing in the club until the night is through",
        "positive",
        ["city", "party"],
        6,
    ),
    (
        "Neon Avenue",
        "Rooftop",
        "Skyscrapers glow, the subway hums below\nthe city never sleeps, the neon signs aglow",
        "mixed",
        ["city"],
        3,
    ),
    (
        "Dust Road",
        "Harvest Moon",
        "Tractor in the field, the corn is growing tall\nthe barn and the fences, the farm before the fall",
        "positive",
        ["farm"],
        9,
    ),
    (
        "Dust Road",
        "Red Barn",
        "Rooster at dawn and cattle in the hay\nworking the land, damn this heat, on my daddy's farm all day",
        "negative",
        ["farm", "work"],
        4,
    ),
]


@pytest.fixture(scope="session")
def embedder(model_dir: Path) -> Embedder:
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(model_dir)


def _analysis(content_hash: str, analyzer: str, sentiment: str, themes: list[str], quality: int) -> Analysis:
    score = {"positive": 0.6, "negative": -0.6}.get(sentiment, 0.0)
    profile = Profile.model_validate(
        {"sentiment": sentiment, "sentiment_score": score, "themes": themes, "complexity": 0.5, "quality": quality}
    )
    return Analysis(analyzer=analyzer, prompt_version="v1", content_hash=content_hash, profile=profile, confidence=0.9)


@pytest.fixture
def loaded(services: Services, embedder: Embedder) -> Services:
    """Six tracks ingested, embedded and enriched by the real functions; each with a rules profile,
    and 'Deep Blue' with a newer LLM profile that disagrees with its rules one."""
    services._embedder = embedder
    body = "".join(
        json.dumps({"id": i, "artist": a, "title": t, "lyrics": lyr}) + "\n" for i, (a, t, lyr, *_) in enumerate(TRACKS)
    )
    info = services.blob.put(services.settings.bucket, "browse.jsonl", body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    ensure_index(services)
    while run_embed_batch(services).claimed:
        pass
    ids = track_ids(services)
    for _, title, _, sentiment, themes, quality in TRACKS:
        enrich_track(ids[title], services)
        with services.db.connection() as conn:
            (chash,) = conn.execute("SELECT content_hash FROM tracks WHERE id = %s", (ids[title],)).fetchone()
            save_analysis(conn, ids[title], _analysis(chash, "rules", sentiment, themes, quality))
            conn.commit()
    with services.db.connection() as conn:
        (chash,) = conn.execute("SELECT content_hash FROM tracks WHERE id = %s", (ids["Deep Blue"],)).fetchone()
        save_analysis(conn, ids["Deep Blue"], _analysis(chash, "llm:test", "negative", ["sea", "loss"], 7))
        conn.commit()
    return services


def track_ids(services: Services) -> dict[str, int]:
    with services.db.connection() as conn:
        rows = conn.execute("SELECT title, id FROM tracks").fetchall()
        conn.commit()
    return {title: int(tid) for title, tid in rows}


@pytest.fixture
def server(loaded: Services) -> Iterator[str]:
    srv = ApiServer(Api(loaded), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def browse(server: str, **params: Any) -> TrackPage:
    resp = httpx.get(f"{server}/tracks", params=params)
    assert resp.status_code == 200, resp.text
    return TrackPage.model_validate(resp.json())


def titles(page: TrackPage) -> set[str]:
    return {t.title for t in page.items}


# -- browse ------------------------------------------------------------------------------------------


def test_browse_pages_newest_first_with_cursor_until_the_last_page_has_no_cursor(server: str) -> None:
    seen: list[Any] = []
    cursor = None
    pages = 0
    while True:
        page = browse(server, limit=4, **({"cursor": cursor} if cursor else {}))
        pages += 1
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 2 and len(seen) == 6 and len({t.id for t in seen}) == 6
    keys = [(t.created_at, t.id) for t in seen]
    assert keys == sorted(keys, reverse=True)


def test_browse_items_show_the_newest_profile_of_the_current_text_and_explicit(server: str) -> None:
    items = {t.title: t for t in browse(server, limit=10).items}
    deep = items["Deep Blue"].profile
    assert deep is not None and deep.analyzer == "llm:test" and deep.sentiment == "negative"
    assert items["Red Barn"].explicit is True and items["Salt Wind"].explicit is False
    assert items["Harvest Moon"].profile is not None and items["Harvest Moon"].profile.quality == 9


def test_browse_filters_on_sentiment_theme_quality_and_analyzer(server: str) -> None:
    assert titles(browse(server, sentiment="positive")) == {"Salt Wind", "Downtown Nights", "Harvest Moon"}
    # The newest profile counts: Deep Blue's LLM profile (negative) outranks its rules one (neutral).
    assert titles(browse(server, sentiment="negative")) == {"Red Barn", "Deep Blue"}
    assert titles(browse(server, sentiment="neutral", analyzer="rules")) == {"Deep Blue"}
    assert titles(browse(server, theme="City")) == {"Downtown Nights", "Rooftop"}
    assert titles(browse(server, quality_min=6, quality_max=8)) == {"Salt Wind", "Downtown Nights", "Deep Blue"}
    assert titles(browse(server, analyzer="llm:test")) == {"Deep Blue"}
    assert titles(browse(server, theme="farm", quality_min=5)) == {"Harvest Moon"}


def test_browse_filters_on_explicit_artist_source_and_time(server: str, loaded: Services) -> None:
    assert titles(browse(server, explicit="true")) == {"Red Barn"}
    assert len(browse(server, explicit="false").items) == 5
    assert titles(browse(server, artist="neon avenue")) == {"Downtown Nights", "Rooftop"}
    with loaded.db.connection() as conn:
        upsert_tracks(conn, [TrackIn(artist="Scraped", title="Web Song", lyrics="found online", source="feed:web")])
        conn.execute("UPDATE tracks SET created_at = now() - interval '30 days' WHERE title = 'Rooftop'")
        conn.commit()
    assert titles(browse(server, source="feed:web")) == {"Web Song"}
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    assert titles(browse(server, until=week_ago)) == {"Rooftop"}
    assert "Rooftop" not in titles(browse(server, since=week_ago)) and len(browse(server, since=week_ago).items) == 6


def test_browse_sorts_by_quality_artist_and_title_and_pages_each_without_gaps(server: str) -> None:
    by_quality = []
    cursor = None
    while True:
        page = browse(server, sort="quality", limit=2, **({"cursor": cursor} if cursor else {}))
        by_quality.extend(page.items)
        if (cursor := page.next_cursor) is None:
            break
    assert [t.title for t in by_quality][:2] == ["Harvest Moon", "Salt Wind"]
    assert [t.profile.quality for t in by_quality if t.profile] == [9, 8, 7, 6, 4, 3]
    by_title = browse(server, sort="title", limit=3)
    assert [t.title for t in by_title.items] == ["Deep Blue", "Downtown Nights", "Harvest Moon"]
    rest = browse(server, sort="title", limit=3, cursor=by_title.next_cursor)
    assert [t.title for t in rest.items] == ["Red Barn", "Rooftop", "Salt Wind"] and rest.next_cursor is None
    assert [t.artist for t in browse(server, sort="artist").items][:2] == ["Dust Road", "Dust Road"]


def test_browse_by_title_pages_past_the_longest_non_latin_titles(server: str, loaded: Services) -> None:
    # GIVEN two tracks whose titles are as long as a track may have, in a script JSON would escape
    longest = ["Ж" * 1000, "Ж" * 999 + "Я"]
    with loaded.db.connection() as conn:
        upsert_tracks(conn, [TrackIn(artist="Long", title=t, lyrics="a long title") for t in longest])
        conn.commit()
    # WHEN the catalogue is paged by title one track at a time
    seen: list[str] = []
    cursor = None
    while True:
        page = browse(server, sort="title", limit=1, **({"cursor": cursor} if cursor else {}))
        seen.extend(t.title for t in page.items)
        if (cursor := page.next_cursor) is None:
            break
    # THEN every cursor (each carrying a whole title) is accepted and no track is skipped
    assert seen[-2:] == longest and len(seen) == len(TRACKS) + 2


def test_browse_refuses_bad_sort_filters_and_foreign_cursors_with_400(server: str) -> None:
    newest = browse(server, limit=1)
    cases = [
        {"sort": "loudest"},
        {"explicit": "maybe"},
        {"sentiment": "ecstatic"},
        {"quality_min": 8, "quality_max": 3},
        {"quality_min": 11},
        {"since": "yesterday"},
        {"cursor": "not-a-cursor"},
        {"sort": "title", "cursor": newest.next_cursor},  # a cursor of another sort order
    ]
    for params in cases:
        resp = httpx.get(f"{server}/tracks", params=params)
        assert resp.status_code == 400, params
        assert "loudest" not in resp.text and "ecstatic" not in resp.text  # never echoes input
        problem = resp.json()
        assert problem["code"] == "invalid_parameter" and problem["errors"], params
        if "cursor" in params:
            assert [e.get("parameter") for e in problem["errors"]] == ["cursor"], params


# -- search ------------------------------------------------------------------------------------------


def search(server: str, **params: Any) -> SearchResults:
    resp = httpx.get(f"{server}/search", params=params)
    assert resp.status_code == 200, resp.text
    return SearchResults.model_validate(resp.json())


def test_keyword_search_matches_words_in_artist_title_and_lyrics(server: str) -> None:
    assert [h.title for h in search(server, q="tractor", mode="keyword").results] == ["Harvest Moon"]
    assert {h.title for h in search(server, q="neon avenue", mode="keyword").results} == {"Downtown Nights", "Rooftop"}
    # stemmed: "sailing" finds "sails" (Salt Wind); "sailors" stems to "sailor" (Deep Blue)
    assert [h.title for h in search(server, q="sailing", mode="keyword").results] == ["Salt Wind"]
    assert search(server, q="zeppelin", mode="keyword").results == []


def test_hybrid_is_the_default_and_puts_an_exact_title_first(server: str, loaded: Services) -> None:
    body = search(server, q="Rooftop", k=3)
    assert body.mode == "hybrid" and body.results[0].title == "Rooftop"
    body = search(server, q="red barn", k=3)
    assert body.results[0].title == "Red Barn"
    # an exact title leads even when a variant of it shares every word and sits nearer in meaning
    live = {"id": "live", "artist": "Dust Road", "title": "Red Barn (Live)", "lyrics": TRACKS[5][2] + "\nred barn!"}
    info = loaded.blob.put(loaded.settings.bucket, "live.jsonl", (json.dumps(live) + "\n").encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), loaded)
    while run_embed_batch(loaded).claimed:
        pass
    assert "Red Barn (Live)" in {h.title for h in search(server, q="red barn", k=2, mode="keyword").results}
    for title in track_ids(loaded):
        assert search(server, q=title.upper(), k=1).results[0].title == title, title
    # the meaning still counts: no shared word, the ocean songs lead
    sea = search(server, q="a voyage across the waters", k=2)
    assert {h.artist for h in sea.results} == {"Harbor Lights"}


def test_semantic_mode_ranks_by_cosine_similarity_as_before(server: str) -> None:
    body = search(server, q="sailing on the ocean waves", k=2, mode="semantic")
    assert body.mode == "semantic" and {h.artist for h in body.results} == {"Harbor Lights"}
    assert 0 < body.results[1].score <= body.results[0].score <= 1


def test_search_filters_apply_in_every_mode(server: str) -> None:
    for mode in ("semantic", "keyword", "hybrid"):
        body = search(server, q="city lights", k=5, mode=mode, sentiment="positive", theme="city")
        assert [h.title for h in body.results] == ["Downtown Nights"], mode
    assert search(server, q="ocean", mode="semantic", k=5, explicit="true").results[0].title == "Red Barn"


def test_search_refuses_an_unknown_mode(server: str) -> None:
    assert httpx.get(f"{server}/search", params={"q": "sea", "mode": "psychic"}).status_code == 400


def test_similar_with_filters_returns_only_matching_tracks_and_never_the_track_itself(
    server: str, loaded: Services
) -> None:
    ids = track_ids(loaded)
    resp = httpx.get(f"{server}/tracks/{ids['Salt Wind']}/similar", params={"k": 5, "sentiment": "positive"})
    assert resp.status_code == 200
    hits = SimilarTracks.model_validate(resp.json()).results
    assert {h.title for h in hits} == {"Downtown Nights", "Harvest Moon"}
    resp = httpx.get(f"{server}/tracks/{ids['Salt Wind']}/similar", params={"k": 1, "theme": "sea"})
    assert [h.title for h in SimilarTracks.model_validate(resp.json()).results] == ["Deep Blue"]


# -- recommend ---------------------------------------------------------------------------------------


def recommend(server: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server}/recommend", json=body)


def test_recommend_follows_the_likes_and_excludes_every_input(server: str, loaded: Services) -> None:
    ids = track_ids(loaded)
    resp = recommend(server, {"liked": [ids["Harvest Moon"]], "k": 1})
    assert resp.status_code == 200
    assert [h.title for h in Recommendations.model_validate(resp.json()).results] == ["Red Barn"]
    liked, disliked = [ids["Salt Wind"], ids["Harvest Moon"]], [ids["Red Barn"]]
    resp = recommend(server, {"liked": liked, "disliked": disliked, "k": 10})
    got = {h.id for h in Recommendations.model_validate(resp.json()).results}
    assert got == set(ids.values()) - set(liked) - set(disliked)


def test_recommend_disliking_a_neighbourhood_pushes_it_down(server: str, loaded: Services) -> None:
    ids = track_ids(loaded)
    plain = recommend(server, {"liked": [ids["Downtown Nights"]], "k": 5}).json()["results"]
    pushed = recommend(server, {"liked": [ids["Downtown Nights"]], "disliked": [ids["Salt Wind"]], "k": 4})
    ranks = [h["title"] for h in pushed.json()["results"]]
    assert "Deep Blue" in [h["title"] for h in plain] and ranks[-1] == "Deep Blue"


def test_recommend_applies_filters(server: str, loaded: Services) -> None:
    ids = track_ids(loaded)
    resp = recommend(server, {"liked": [ids["Salt Wind"]], "k": 5, "filters": {"artist": "dust road"}})
    assert {h["title"] for h in resp.json()["results"]} == {"Harvest Moon", "Red Barn"}


def test_recommend_refuses_unknown_overlapping_and_unembedded_inputs(server: str, loaded: Services) -> None:
    ids = track_ids(loaded)
    assert recommend(server, {"liked": [999_999]}).status_code == 404
    assert recommend(server, {"liked": [ids["Rooftop"]], "disliked": [ids["Rooftop"]]}).status_code == 400
    assert recommend(server, {"liked": []}).status_code == 400
    with loaded.db.connection() as conn:
        upsert_tracks(conn, [TrackIn(artist="New", title="Not Yet", lyrics="waiting to be embedded")])
        conn.commit()
    new_id = track_ids(loaded)["Not Yet"]
    resp = recommend(server, {"liked": [new_id]})
    assert resp.status_code == 409 and resp.json()["code"] == "not_embedded"


def test_changed_lyrics_leave_keyword_search_until_the_track_is_embedded_again(server: str, loaded: Services) -> None:
    # GIVEN a second version of one row of the file (same id), uploaded and ingested
    row = {"id": 5, "artist": "Dust Road", "title": "Red Barn", "lyrics": "a zeppelin over the barn"}
    info = loaded.blob.put(loaded.settings.bucket, "browse-v2.jsonl", (json.dumps(row) + "\n").encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), loaded)
    # THEN the new words are not searchable yet (nor are the old ones: the text vector was reset)
    assert search(server, q="zeppelin", mode="keyword").results == []
    assert search(server, q="rooster", mode="keyword").results == []
    # WHEN the embed stage has run
    while run_embed_batch(loaded).claimed:
        pass
    # THEN the track is found by its new words
    assert [h.title for h in search(server, q="zeppelin", mode="keyword").results] == ["Red Barn"]


def test_openapi_declares_the_new_routes_with_their_response_models(server: str) -> None:
    doc = httpx.get(f"{server}/openapi.json").json()
    listing = doc["paths"]["/tracks"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"artist", "sentiment", "theme", "quality_min", "explicit", "sort", "limit", "cursor"} <= names
    assert "TrackPage" in json.dumps(listing["responses"]["200"])
    assert "Recommendations" in json.dumps(doc["paths"]["/recommend"]["post"]["responses"]["200"])
    search_params = {p["name"] for p in doc["paths"]["/search"]["get"]["parameters"]}
    assert {"mode", "theme", "since"} <= search_params
    assert {"theme"} <= {p["name"] for p in doc["paths"]["/tracks/{id}/similar"]["get"]["parameters"]}
