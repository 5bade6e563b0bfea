"""``/admin/models`` over a real HTTP server: an external 768-d model from the test embeddings
server is added beside the built-in 384-d one, backfilled, searched, rolled back and retired, with
search answering throughout (real PostgreSQL + pgvector, the real small model)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from functions.api.core import Api
from functions.embed.backfill import backfill_step
from functions.embed.core import ensure_index, run_embed_batch
from functions.ingest.core import handle_object_created
from local.server import ApiServer
from shared.embedder.base import Embedder
from shared.events import ObjectCreated
from shared.services import Services
from tests.servers.embeddings_server import EmbeddingsServer

LYRICS = [
    ("Harbor Lights", "Salt Wind", "The sails are full, the harbor fades behind, waves crash on the bow"),
    ("Harbor Lights", "Deep Blue", "Anchors up, we ride the rolling tide, the ocean sings to sailors"),
    ("Neon Avenue", "Downtown Nights", "City lights and taxis on the avenue, dancing until the night is through"),
    ("Neon Avenue", "Rooftop", "Skyscrapers glow, the subway hums below, the city never sleeps"),
    ("Dust Road", "Harvest Moon", "Tractor in the field, the corn is growing tall, the barn before the fall"),
    ("Dust Road", "Red Barn", "Rooster at dawn and cattle in the hay, working the farm all day"),
]


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> Embedder:
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(model_dir)


@pytest.fixture
def external() -> Iterator[EmbeddingsServer]:
    srv = EmbeddingsServer(dims=768)
    with srv:
        yield srv


@pytest.fixture
def svc(services: Services, embedder: Embedder) -> Services:
    """Six tracks ingested and embedded with the built-in model; the loopback test server reachable."""
    settings = services.settings.model_copy(
        update={"http_allow_networks": (ipaddress.ip_network("127.0.0.0/8"),), "embed_api_key": SecretStr("test-key")}
    )
    tuned = dataclasses.replace(services, settings=settings, _model_embedders={})
    tuned._embedder = embedder
    body = "".join(
        json.dumps({"id": i, "artist": a, "title": t, "lyrics": lyr}) + "\n" for i, (a, t, lyr) in enumerate(LYRICS)
    )
    info = tuned.blob.put(settings.bucket, "models.jsonl", body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), tuned)
    ensure_index(tuned)
    while run_embed_batch(tuned).claimed:
        pass
    return tuned


@pytest.fixture
def api(svc: Services) -> Iterator[str]:
    srv = ApiServer(Api(svc), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def _search(api: str, q: str) -> dict[str, Any]:
    resp = httpx.get(f"{api}/search", params={"q": q, "k": 2})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_an_external_768d_model_is_added_backfilled_searched_rolled_back_and_retired(
    api: str, svc: Services, external: EmbeddingsServer
) -> None:
    builtin = svc.embedder.model_key
    added = httpx.post(
        f"{api}/admin/models",
        json={"provider": "openai", "name": "ext-embed", "version": "2", "dimensions": 768, "base_url": external.url},
    )
    assert added.status_code == 200, added.text
    assert added.json() == {"key": "ext-embed@2", "state": "shadow"}
    listed = httpx.get(f"{api}/admin/models").json()["items"]
    assert [(m["key"], m["state"], m["dimensions"], m["embedded"]) for m in listed] == [
        (builtin, "active", 384, 6),
        ("ext-embed@2", "shadow", 768, 0),
    ]

    refused = httpx.post(f"{api}/admin/models/activate", json={"key": "ext-embed@2"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "not ready: 6 of 6 tracks have no current vector yet (backfill running); its HNSW index is missing"
    )
    assert _search(api, "sailing on the ocean")["model"] == builtin  # search answers during the backfill

    while backfill_step(svc, 4) is not None:
        pass
    stats = httpx.get(f"{api}/stats").json()
    assert {m["key"]: (m["percent"], m["index"]) for m in stats["models"]} == {
        builtin: (100.0, "valid"),
        "ext-embed@2": (100.0, "valid"),
    }
    assert stats["embeddings"] == {builtin: 6, "ext-embed@2": 6}

    switched = httpx.post(f"{api}/admin/models/activate", json={"key": "ext-embed@2"})
    assert switched.status_code == 200 and switched.json()["state"] == "active"
    found = _search(api, "cattle in the hay on the farm")
    assert found["model"] == "ext-embed@2"
    assert found["results"][0]["title"] == "Red Barn"

    back = httpx.post(f"{api}/admin/models/rollback")
    assert back.status_code == 200 and back.json() == {"key": builtin, "state": "active"}
    assert _search(api, "sailing on the ocean")["model"] == builtin

    assert httpx.post(f"{api}/admin/models/retire", json={"key": builtin}).status_code == 409
    retired = httpx.post(f"{api}/admin/models/retire", json={"key": "ext-embed@2"})
    assert retired.json() == {"key": "ext-embed@2", "vectors_deleted": 6}
    assert [m["key"] for m in httpx.get(f"{api}/admin/models").json()["items"]] == [builtin]


def test_an_unknown_model_is_not_found_without_echoing_the_key(api: str) -> None:
    resp = httpx.post(f"{api}/admin/models/activate", json={"key": "nosuch-model@secret-value"})
    assert resp.status_code == 404
    assert "secret-value" not in resp.text


def test_an_openai_model_without_its_dimension_is_a_bad_request(api: str) -> None:
    resp = httpx.post(f"{api}/admin/models", json={"provider": "openai", "name": "x", "base_url": "http://127.0.0.1:9"})
    assert resp.status_code == 400 and "needs name, dimensions and base_url" in resp.json()["detail"]
