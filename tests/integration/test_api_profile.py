"""``GET /tracks/{id}`` (the whole profile) and ``DELETE /tracks/{id}`` over the real HTTP server, on a
real PostgreSQL, after the real ingest, embed, enrich (against the Spotify-compatible test server)
and analyze functions ran."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.analyze.core import run_analyze_batch
from functions.api.core import Api
from functions.embed.core import run_embed_batch
from functions.enrich.core import run_enrich_batch
from functions.ingest.core import handle_object_created
from local.server import ApiServer
from shared.embedder.base import Embedder
from shared.events import ObjectCreated
from shared.services import Services
from shared.store.profile import TrackProfile
from shared.store.provenance import Removal
from tests.intel_fixtures import intel_services, sample_rows, spotify_server  # noqa: F401
from tests.servers.spotify_server import SpotifyServer

KEY = "profile.jsonl"


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> Embedder:
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(model_dir)


@pytest.fixture
def profiled(
    intel_services: Callable[..., Services],  # noqa: F811
    spotify_server: SpotifyServer,  # noqa: F811
    embedder: Embedder,
) -> Services:
    """Three sample tracks through every stage, against a catalogue that refuses audio features."""
    spotify_server.audio_features_forbidden = True
    services = intel_services(
        spotify_api_url=spotify_server.url,
        spotify_token_url=spotify_server.url + "/api/token",
        spotify_client_id="cid",
        spotify_client_secret="csecret",
    )
    services._embedder = embedder
    body = "".join(json.dumps(r) + "\n" for r in sample_rows(3)).encode()
    info = services.blob.put(services.settings.bucket, KEY, body)
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    while (
        run_embed_batch(services).claimed or run_enrich_batch(services).claimed or run_analyze_batch(services).claimed
    ):
        pass
    return services


@pytest.fixture
def server(profiled: Services) -> Iterator[str]:
    srv = ApiServer(Api(profiled), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def _ids(services: Services) -> list[int]:
    with services.db.connection() as conn:
        rows = conn.execute("SELECT id FROM tracks ORDER BY id").fetchall()
        conn.commit()
    return [int(r[0]) for r in rows]


def _count(services: Services, sql: str, *params: Any) -> int:
    with services.db.connection() as conn:
        row = conn.execute(sql, params or None).fetchone()
        conn.commit()
    return int(row[0]) if row else 0


def test_track_profile_over_http_has_every_enrichment_analysis_link_and_stage(server: str, profiled: Services) -> None:
    track_id = _ids(profiled)[1]
    # WHEN the profile is asked for
    resp = httpx.get(f"{server}/tracks/{track_id}")
    # THEN it is the declared model
    assert resp.status_code == 200
    profile = TrackProfile.model_validate(resp.json())
    assert profile.id == track_id and profile.embedded_models == [profiled.embedder.model_key]
    # AND the lyric features and the catalogue match are there, the refused audio features said so
    features, metadata = profile.enrichments.features, profile.enrichments.metadata
    assert features is not None and features.current and "rhyme_density" in features.data
    assert metadata is not None and metadata.matched and metadata.spotify_id
    assert metadata.audio_features is None and metadata.audio_features_unavailable == "forbidden"
    # AND each analysis has its analyzer, prompt version, result, confidence, fallback flag and cost
    assert profile.analyses, "the analyze stage stored nothing"
    analysis = profile.analyses[0]
    assert analysis.current and analysis.analyzer and analysis.prompt_version
    assert 1 <= analysis.profile.quality <= 10 and 0 <= analysis.confidence <= 1
    assert analysis.tokens_in >= 0 and analysis.cost_usd >= 0 and isinstance(analysis.fallback, bool)
    # AND the object version and line it came from (the second row of the file)
    [link] = profile.provenance.objects
    assert (link.bucket, link.key, link.line) == (profiled.settings.bucket, KEY, 2) and profile.provenance.pages == []
    # AND the stage trail: the file's ingest, then the track's embed, enrich and analyze
    stages = {(s.subject.split(":", 1)[0], s.stage, s.status) for s in profile.stages}
    assert stages == {
        ("object", "ingested", "ok"),
        ("track", "embedded", "ok"),
        ("track", "enriched", "ok"),
        ("track", "analyzed", "ok"),
    }
    # AND an unknown track is a 404
    assert httpx.get(f"{server}/tracks/999999").status_code == 404


def test_delete_track_over_http_removes_it_with_everything_derived_and_a_repeat_is_404(
    server: str, profiled: Services
) -> None:
    first, second, third = _ids(profiled)
    derived = (
        "SELECT (SELECT count(*) FROM embeddings) + (SELECT count(*) FROM enrichments)"
        " + (SELECT count(*) FROM analyses)"
    )
    before = _count(profiled, derived)
    # WHEN one track is deleted
    resp = httpx.delete(f"{server}/tracks/{second}")
    # THEN the answer says what went: the track, its embedding, its two enrichments, its analyses
    assert resp.status_code == 200
    removed = Removal.model_validate(resp.json()["removed"])
    assert resp.json()["track_id"] == second and removed.track_ids == [second]
    assert (removed.tracks, removed.embeddings, removed.enrichments) == (1, 1, 2) and removed.analyses >= 1
    # AND exactly that is gone from the database; the other tracks keep everything
    assert _ids(profiled) == [first, third]
    assert _count(profiled, derived) == before - (removed.embeddings + removed.enrichments + removed.analyses)
    assert _count(profiled, "SELECT count(*) FROM track_objects") == 2
    assert (
        _count(profiled, "SELECT count(*) FROM ledger WHERE subject = %s AND stage = 'deleted'", f"track:{second}") == 1
    )
    assert httpx.get(f"{server}/tracks/{second}").status_code == 404
    # WHEN it is deleted again THEN it is a 404 and nothing changes
    snapshot = _count(profiled, derived)
    assert httpx.delete(f"{server}/tracks/{second}").status_code == 404
    assert _count(profiled, derived) == snapshot and _ids(profiled) == [first, third]


def test_openapi_declares_the_profile_and_the_deletion(server: str) -> None:
    doc = httpx.get(f"{server}/openapi.json").json()
    ops = doc["paths"]["/tracks/{id}"]
    assert ops["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/TrackProfile")
    assert ops["delete"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/TrackDeleted")
    assert {"Provenance", "AnalysisRecord", "SpotifyEnrichment", "StageRecord"} <= set(doc["components"]["schemas"])
