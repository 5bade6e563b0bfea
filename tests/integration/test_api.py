"""The API over a real HTTP server, real PostgreSQL + pgvector and the real embedding model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from functions.api.core import Api
from functions.embed.core import ensure_index, run_embed_batch
from functions.ingest.core import handle_object_created
from local.server import ApiServer
from shared.config import Settings, load_settings
from shared.embedder.base import Embedder
from shared.events import HttpRequest, ObjectCreated
from shared.services import Services
from tests.intel_fixtures import redis_session, redis_url  # noqa: F401 - fixtures

TRACKS = [
    (
        "Harbor Lights",
        "Salt Wind",
        "The sails are full, the harbor fades behind\nwaves crash on the bow, the open sea is mine",
    ),
    ("Harbor Lights", "Deep Blue", "Anchors up, we ride the rolling tide\nthe ocean sings to sailors far and wide"),
    (
        "Neon Avenue",
        "Downtown Nights",
        "City lights and taxis on the avenue\ndancing in the club until the night is through",
    ),
    ("Neon Avenue", "Rooftop", "Skyscrapers glow, the subway hums below\nthe city never sleeps, the neon signs aglow"),
    (
        "Dust Road",
        "Harvest Moon",
        "Tractor in the field, the corn is growing tall\nthe barn and the fences, the farm before the fall",
    ),
    ("Dust Road", "Red Barn", "Rooster at dawn and cattle in the hay\nworking the land on my daddy's farm all day"),
]


@pytest.fixture(scope="session")
def embedder(model_dir: Path) -> Embedder:
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(model_dir)


@pytest.fixture
def loaded(services: Services, embedder: Embedder) -> Services:
    """Services with six tracks ingested and embedded through the real functions."""
    services._embedder = embedder
    body = "".join(
        json.dumps({"id": i, "artist": a, "title": t, "lyrics": lyr}) + "\n" for i, (a, t, lyr) in enumerate(TRACKS)
    )
    info = services.blob.put(services.settings.bucket, "api.jsonl", body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    ensure_index(services)
    while run_embed_batch(services).claimed:
        pass
    return services


@pytest.fixture
def server(loaded: Services) -> Iterator[str]:
    srv = ApiServer(Api(loaded), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def test_search_over_http_returns_the_semantically_nearest_tracks(server: str) -> None:
    resp = httpx.get(f"{server}/search", params={"q": "sailing on the ocean waves", "k": 2})
    assert resp.status_code == 200
    body = resp.json()
    assert {h["artist"] for h in body["results"]} == {"Harbor Lights"}
    first = body["results"][0]
    assert set(first) == {"id", "artist", "title", "score", "snippet"}
    assert 0 < first["score"] <= 1 and first["snippet"]
    assert body["results"][0]["score"] >= body["results"][1]["score"]


def test_search_with_artist_filter_returns_only_that_artist(server: str) -> None:
    resp = httpx.get(f"{server}/search", params={"q": "sailing on the ocean", "k": 5, "artist": "dust road"})
    assert resp.status_code == 200
    assert [h["artist"] for h in resp.json()["results"]] == ["Dust Road", "Dust Road"]


def test_track_and_similar_endpoints(server: str, loaded: Services) -> None:
    with loaded.db.connection() as conn:
        (farm_id,) = conn.execute("SELECT id FROM tracks WHERE title = 'Harvest Moon'").fetchone()
        conn.commit()
    track = httpx.get(f"{server}/tracks/{farm_id}").json()
    assert track["title"] == "Harvest Moon" and track["embedded_models"] == [loaded.embedder.model_key]
    similar = httpx.get(f"{server}/tracks/{farm_id}/similar", params={"k": 1}).json()["results"]
    assert [h["title"] for h in similar] == ["Red Barn"]
    assert httpx.get(f"{server}/tracks/999999").status_code == 404


def test_health_stats_and_openapi(server: str) -> None:
    health = httpx.get(f"{server}/health").json()
    # every track was embedded; its enrich job (queued by ingest beside the embed job) still waits
    assert health["status"] == "ok" and health["db"] == "ok" and health["queue_depth"] == 6
    assert health["model"]["search_index"] == "hnsw"
    stats = httpx.get(f"{server}/stats").json()
    assert stats["queue"]["by_kind"] == {"enrich": 6}
    assert stats["tracks"] == 6 and list(stats["embeddings"].values()) == [6]
    assert stats["gpu"] == {"workers": 0, "img_per_s_per_instance": None}
    assert stats["stages"]["ingested"] == {"ok": 1} and stats["stages"]["embedded"] == {"ok": 6}
    assert stats["images"] == {"total": 0, "by_status": {}} and stats["streams"]["total"] == 0
    assert stats["llm_today"] == {"calls": 0, "ok": 0, "tokens": 0, "cost_usd": 0.0, "budget": None}
    doc = httpx.get(f"{server}/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and "/search" in doc["paths"] and "/tracks/{id}/similar" in doc["paths"]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/search", {"q": "x" * 1001}, 400, "invalid_parameter"),
        ("/search", {"q": "sea", "k": "101"}, 400, "invalid_parameter"),
        ("/search", {"q": "sea", "color": "red"}, 400, "unknown_parameter"),
        ("/nope", {}, 404, "not_found"),
        ("/tracks/abc", {}, 404, "not_found"),
    ],
)
def test_bad_requests_get_a_problem_document_that_does_not_echo_input(
    server: str, path: str, params: dict[str, str], status: int, code: str
) -> None:
    resp = httpx.get(f"{server}{path}", params=params)
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    err = resp.json()
    assert err["code"] == code and err["status"] == status and err["type"].endswith(f":{code}")
    assert err["title"] and err["detail"]
    for value in list(params.values()) + list(params):
        if len(value) > 3:
            assert value not in resp.text


def test_oversized_body_is_refused_before_it_is_read(server: str) -> None:
    resp = httpx.post(f"{server}/search", content=b"x" * (2 * 1024 * 1024))
    assert resp.status_code == 413


@pytest.mark.parametrize(
    ("path", "depth"),
    [
        ("/analyze", 20_000),  # past the JSON decoder's recursion limit, under the body size limit
        ("/streams", 4_000),  # 8 KB bodies: still deep enough to exhaust the decoder's recursion
        ("/analyze", 40),  # shallow enough to decode: refused as too deep all the same
    ],
)
def test_a_nesting_bomb_body_gets_a_400_that_names_the_limit_not_a_500(server: str, path: str, depth: int) -> None:
    # GIVEN a small JSON body nested thousands of levels deep, inside a field the route reads
    bomb = b'{"text": ' + b"[" * depth + b"]" * depth + b"}"
    resp = httpx.post(f"{server}{path}", content=bomb, headers={"content-type": "application/json"})
    # THEN the API refuses it as a bad body, says why, and the server still answers
    assert resp.status_code == 400, resp.text[:300]
    assert resp.json()["code"] == "invalid_body" and "nested deeper than" in resp.text
    assert "[[[[" not in resp.text
    assert httpx.get(f"{server}/health").status_code == 200


def test_api_key_is_required_when_configured(loaded: Services, tmp_path: Path) -> None:
    settings: Settings = load_settings(**{**loaded.settings.model_dump(), "api_key": "s3cret-key"})
    api = Api(Services(settings, loaded.db, loaded.queue, loaded.blob, loaded.cache, loaded.embedder))

    def call(headers: dict[str, str]) -> int:
        return api.handle(HttpRequest.from_parts("GET", "/stats", "", headers)).status

    assert call({}) == 401
    assert call({"X-API-Key": "wrong"}) == 401
    assert call({"X-API-Key": "s3cret-key"}) == 200
    assert call({"Authorization": "Bearer s3cret-key"}) == 200
    assert api.handle(HttpRequest.from_parts("GET", "/health")).status == 200  # probes stay open


class _CountingEmbedder:
    def __init__(self, inner: Embedder) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, texts: Sequence[str]) -> Any:
        self.calls += 1
        return self.inner.embed(texts)


def test_query_vectors_are_shared_through_redis_between_instances(
    loaded: Services,
    embedder: Embedder,
    redis_url: str,  # noqa: F811
) -> None:
    # GIVEN two API instances (two processes' worth of services) on the same database and Redis
    settings = loaded.settings.model_copy(update={"redis_url": SecretStr(redis_url)})
    first, second = Services.from_settings(settings), Services.from_settings(settings)
    try:
        assert first.shared_cache and second.shared_cache
        counting = _CountingEmbedder(embedder)
        first._embedder, second._embedder = counting, counting  # type: ignore[assignment]
        query = HttpRequest.from_parts("GET", "/search", "q=tractors+and+harvest&k=2")
        # WHEN the same query reaches one instance, then the other
        a = json.loads(Api(first).handle(query).body)
        b = json.loads(Api(second).handle(query).body)
        # THEN it was embedded once, the second instance answered from Redis, with the same results
        assert counting.calls == 1 and second.cache.hits == 1  # type: ignore[attr-defined]
        assert [r["id"] for r in a["results"]] == [r["id"] for r in b["results"]]
        # AND Redis holds the vector under a hash of the query, not the query itself
        import redis

        keys = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*qvec*")]
        assert len(keys) == 1 and "tractors" not in keys[0]
    finally:
        first.close()
        second.close()
