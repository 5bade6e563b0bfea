"""When the HNSW index is built: deferred under a bulk backlog, built once it drains (real PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path

import psycopg
import pytest

from functions.embed.core import run_embed_batch
from functions.embed.index import IndexKeeper, IndexState
from functions.ingest.core import handle_object_created
from shared.embedder.base import Embedder
from shared.events import ObjectCreated
from shared.services import Services
from shared.store.tracks import TrackStore, hnsw_index_name


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> Embedder:
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(model_dir)


def _with(services: Services, embedder: Embedder, **settings: object) -> Services:
    tuned = dataclasses.replace(services, settings=services.settings.model_copy(update=settings))
    tuned._embedder = embedder
    return tuned


def _ingest(services: Services, n: int) -> None:
    themes = ["rivers and rain", "city lights at night", "desert highways", "winter snow"]
    body = "".join(
        json.dumps({"id": i, "artist": f"A{i % 3}", "title": f"T{i}", "lyrics": f"a song about {themes[i % 4]} {i}"})
        + "\n"
        for i in range(n)
    )
    info = services.blob.put(services.settings.bucket, "bulk.jsonl", body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)


def _index_state(services: Services) -> str:
    with services.db.connection() as conn:
        state = TrackStore(conn).hnsw_index_state(services.embedder.model_key)
        conn.commit()
    return state


def _index_definition(services: Services) -> str:
    with services.db.connection() as conn:
        row = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (hnsw_index_name(services.embedder.model_key),)
        ).fetchone()
        conn.commit()
    return row[0] if row else ""


def test_bulk_backlog_defers_the_index_and_search_still_answers_then_it_is_built_once_drained(
    services: Services, embedder: Embedder
) -> None:
    # GIVEN 48 queued embed jobs, above a deferral threshold of 20
    svc = _with(services, embedder, hnsw_defer_backlog=20, embed_batch_size=8)
    _ingest(svc, 48)
    keeper = IndexKeeper(svc)
    # WHEN the keeper looks while the backlog is deep
    assert keeper.tick() is IndexState.DEFERRED
    run_embed_batch(svc)
    assert keeper.tick() is IndexState.DEFERRED
    # THEN no index exists yet, and search answers by exact scan over what is embedded so far
    assert _index_state(svc) == "missing"
    with svc.db.connection() as conn:
        hits = TrackStore(conn).search(embedder.embed(["rain on the river"])[0], embedder.model_key, 3)
        conn.commit()
    assert len(hits) == 3
    # WHEN the backlog falls below the threshold
    while svc.queue.backlog("embed", 20) >= 20:
        assert run_embed_batch(svc).claimed
    # THEN the next look builds a valid HNSW index, which search can use, and later looks are free
    assert keeper.tick() is IndexState.READY
    assert _index_state(svc) == "valid"
    definition = _index_definition(svc)
    assert "USING hnsw (((embedding)::vector(384)) vector_cosine_ops)" in definition
    assert f"ef_construction='{svc.settings.hnsw_ef_construction}'" in definition
    assert keeper.ready and keeper.tick() is IndexState.READY


def test_model_without_vectors_is_pending_unless_deferral_is_off(services: Services, embedder: Embedder) -> None:
    deferring = _with(services, embedder, hnsw_defer_backlog=20)
    assert IndexKeeper(deferring).tick() is IndexState.PENDING
    assert _index_state(deferring) == "missing"
    eager = _with(services, embedder, hnsw_defer_backlog=0)
    assert IndexKeeper(eager).tick() is IndexState.READY
    assert _index_state(eager) == "valid"


def test_invalid_index_left_by_an_interrupted_build_is_dropped_and_rebuilt(
    services: Services, embedder: Embedder
) -> None:
    # GIVEN an invalid index under the model's index name: a concurrent build that failed half-way
    svc = _with(services, embedder, hnsw_defer_backlog=0)
    _ingest(svc, 4)
    while run_embed_batch(svc).claimed:
        pass
    name = hnsw_index_name(embedder.model_key)
    with psycopg.connect(svc.db.url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                psycopg.sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON embeddings (model)").format(
                    psycopg.sql.Identifier(name)
                )
            )
    assert _index_state(svc) == "invalid"
    # WHEN the keeper looks
    state = IndexKeeper(svc).tick()
    # THEN it replaced the broken index with a valid HNSW one
    assert state is IndexState.READY
    assert _index_state(svc) == "valid"
    assert "USING hnsw" in _index_definition(svc)


def test_second_process_skips_the_build_while_another_holds_the_lock(services: Services, embedder: Embedder) -> None:
    svc = _with(services, embedder, hnsw_defer_backlog=0)
    name = hnsw_index_name(embedder.model_key)
    with psycopg.connect(svc.db.url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (zlib.crc32(f"contentfn:hnsw:{name}".encode()),))
        keeper = IndexKeeper(svc)
        assert keeper.tick() is IndexState.BUILDING
        assert _index_state(svc) == "missing"
        assert not keeper.ready
    # the other builder went away without building: the next look builds
    assert keeper.tick() is IndexState.READY
