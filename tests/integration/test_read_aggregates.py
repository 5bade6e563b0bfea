"""``/artists/{name}`` and ``/stats/analyses`` over the real HTTP server and real PostgreSQL: tracks
ingested, embedded with the real model, enriched and analysed (rules, and an OpenAI-compatible local
server for the LLM) by the real functions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from functions.analyze.core import analyze_track, run_analyze_batch
from functions.api.core import Api
from functions.embed.core import run_embed_batch
from functions.enrich.core import run_enrich_batch
from functions.ingest.core import handle_object_created
from local.server import ApiServer
from shared.embedder.base import Embedder
from shared.events import ObjectCreated
from shared.services import Services
from tests.intel_fixtures import intel_services, llm_server, sample_rows  # noqa: F401
from tests.servers.llm_server import LlmServer

N_TRACKS = 15


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> Embedder:
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(model_dir)


@pytest.fixture
def analysed(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
    embedder: Embedder,
) -> Services:
    """Fifteen tracks by three artists through ingest, embed, enrich and analyze."""
    services = intel_services(
        llm_base_url=llm_server.url,
        llm_api_key="test-key",
        llm_model="test-model",
        llm_price_input_per_mtok=1.0,
        llm_price_output_per_mtok=2.0,
    )
    services._embedder = embedder
    body = "".join(json.dumps(r) + "\n" for r in sample_rows(N_TRACKS))
    info = services.blob.put(services.settings.bucket, "catalogue.jsonl", body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    while any(
        (run_embed_batch(services).claimed, run_enrich_batch(services).claimed, run_analyze_batch(services).claimed)
    ):
        pass
    return services


@pytest.fixture
def api(analysed: Services) -> Iterator[str]:
    srv = ApiServer(Api(analysed), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def _rows(services: Services, query: str, *args: object) -> list[tuple[Any, ...]]:
    with services.db.connection() as conn:
        rows = conn.execute(query, args).fetchall()
        conn.commit()
    return rows


def _exact_nearest(services: Services, artist: str) -> list[str]:
    """Artists by cosine similarity of their mean vectors to ``artist``'s, computed here with numpy."""
    vectors: dict[str, list[np.ndarray]] = {}
    for name, vec in _rows(
        services, "SELECT t.artist, e.embedding::text FROM embeddings e JOIN tracks t ON t.id = e.track_id"
    ):
        vectors.setdefault(str(name), []).append(np.asarray(json.loads(str(vec)), dtype=np.float64))
    centroids = {a: np.mean(v, axis=0) for a, v in vectors.items()}
    me = centroids.pop(artist)
    cos = {a: float(c @ me / np.linalg.norm(c) / np.linalg.norm(me)) for a, c in centroids.items()}
    return sorted(cos, key=lambda a: -cos[a])


def test_artist_route_aggregates_its_tracks_profiles_features_and_nearest_artists(analysed: Services, api: str) -> None:
    artists = sorted({r["artist"] for r in sample_rows(N_TRACKS)})
    name = artists[0]
    expected_ids = sorted(int(r[0]) for r in _rows(analysed, "SELECT id FROM tracks WHERE artist = %s", name))
    # WHEN the artist is asked for, its name percent-encoded and in another case
    resp = httpx.get(f"{api}/artists/{quote(name.upper())}", params={"limit": 2})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # THEN its tracks are counted and listed (the first page), each of them analysed
    assert body["artist"] == name and body["tracks"] == len(expected_ids) == body["analysed"]
    assert [t["id"] for t in body["items"]] == expected_ids[:2]
    # AND the distributions add up to its tracks
    assert sum(body["quality"].values()) == len(expected_ids) and set(body["quality"]) == {str(q) for q in range(1, 11)}
    assert sum(body["sentiment"].values()) == len(expected_ids)
    assert body["top_themes"] and body["top_themes"][0]["tracks"] >= body["top_themes"][-1]["tracks"]
    # AND the lyric features are averaged over its tracks
    rhyme = [
        float(r[0])
        for r in _rows(
            analysed,
            "SELECT (e.data->>'rhyme_density')::float8 FROM enrichments e JOIN tracks t ON t.id = e.track_id"
            " WHERE t.artist = %s AND e.kind = 'features'",
            name,
        )
    ]
    assert body["feature_means"]["rhyme_density"] == pytest.approx(sum(rhyme) / len(rhyme), abs=1e-4)
    # AND the other artists come nearest first, as an exact computation of the centroids orders them
    assert body["model"] == analysed.embedder.model_key
    assert [a["artist"] for a in body["nearest_artists"]] == _exact_nearest(analysed, name)
    sims = [a["similarity"] for a in body["nearest_artists"]]
    assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)


def test_artist_route_answers_404_for_an_artist_with_no_tracks(api: str) -> None:
    resp = httpx.get(f"{api}/artists/{quote('Nobody At All')}")
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"


def test_stats_analyses_reports_distributions_who_answered_and_llm_cost_per_day(analysed: Services, api: str) -> None:
    # GIVEN one track analysed again: answered from what is already known, not computed
    (first_id,) = _rows(analysed, "SELECT min(id) FROM tracks")[0]
    assert analyze_track(int(str(first_id)), analysed).cached
    body = httpx.get(f"{api}/stats/analyses").json()
    # THEN every track is counted once in the distributions
    assert body["tracks"] == N_TRACKS == body["analysed"]
    assert sum(body["quality"].values()) == N_TRACKS and sum(body["sentiment"].values()) == N_TRACKS
    # AND who answered each track's latest analysis is told apart, the cache included
    by = body["answered_by"]
    assert sum(by.values()) == N_TRACKS and by["cache"] == 1
    llm_tracks = _rows(
        analysed,
        "SELECT count(*) FROM ledger WHERE stage = 'analyzed' AND detail->>'analyzer' LIKE 'llm:%%'"
        " AND NOT (detail->>'cached')::boolean",
    )[0][0]
    assert by.get("llm", 0) == llm_tracks and by.get("llm", 0) + by.get("rules", 0) + by.get("distilled", 0) == 14
    assert body["cache_hit_ratio"] == pytest.approx(1 / N_TRACKS, abs=1e-4)
    assert sum(body["answered_share"].values()) == pytest.approx(1.0, abs=1e-3)
    # AND today's LLM calls, tokens and cost stand against the day's budget
    (today,) = body["llm_days"]
    calls, tokens_in, cost = _rows(analysed, "SELECT count(*), sum(tokens_in), sum(cost_usd) FROM llm_calls")[0]
    assert today["day"] == date.today().isoformat() and today["calls"] == calls and calls
    assert today["tokens_in"] == tokens_in and today["cost_usd"] == pytest.approx(float(str(cost)), abs=1e-6)
    assert today["token_limit"] == analysed.settings.llm_daily_token_budget
    assert 0 < today["budget_used"] <= today["token_limit"]
    assert today["budget_share"] == pytest.approx(today["budget_used"] / today["token_limit"], abs=1e-4)
