"""Vectors of any dimension share the embeddings table, each model searched through its own HNSW
expression index (real PostgreSQL + pgvector)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import psycopg
import pytest
from psycopg import sql

from shared.models import TrackIn
from shared.services import Services
from shared.store.browse import TrackFilter
from shared.store.search import filtered_search
from shared.store.tracks import TrackStore, hnsw_index_name, upsert_tracks

SMALL = "small-64@1"
BASE = "base-384@1"
ROWS = 600


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture
def two_models(services: Services) -> dict[str, Any]:
    """600 tracks, each with a 384-d vector under one model and a 64-d vector under another,
    both models indexed."""
    rng = np.random.default_rng(5)
    vectors = {BASE: _unit(rng.normal(size=(ROWS, 384))), SMALL: _unit(rng.normal(size=(ROWS, 64)))}
    rows = [
        TrackIn(artist=f"a{i % 7}", title=f"t{i}", lyrics=f"line {i}", source="dims", source_id=str(i))
        for i in range(ROWS)
    ]
    with services.db.connection() as conn:
        upsert_tracks(conn, rows)
        ids = dict(conn.execute("SELECT source_id, id FROM tracks").fetchall())
        hashes = dict(conn.execute("SELECT id, content_hash FROM tracks").fetchall())
        track_ids = [int(ids[str(i)]) for i in range(ROWS)]
        store = TrackStore(conn)
        for model, vecs in vectors.items():
            store.write_embeddings(model, track_ids, [hashes[t] for t in track_ids], vecs)
            assert store.ensure_hnsw_index(model) is True
        conn.execute("ANALYZE embeddings")
        conn.commit()
    return {"services": services, "ids": track_ids, "vectors": vectors}


class _Recorder:
    """Just enough of a connection for TrackStore.search that keeps the statements it runs."""

    def __init__(self, inner: psycopg.Connection[Any]) -> None:
        self.inner = inner
        self.log: list[tuple[Any, Any]] = []

    def cursor(self) -> _Recorder:
        return self

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, query: Any, params: Any = None) -> None:
        self.log.append((query, params))

    def fetchall(self) -> list[Any]:
        return []


def _plan_of_search(conn: psycopg.Connection[Any], vector: np.ndarray, model: str) -> str:
    recorder = _Recorder(conn)
    TrackStore(cast(Any, recorder)).search(vector, model, 10)
    (set_ef, set_params), (query, params) = recorder.log[0], recorder.log[-1]
    conn.execute(set_ef, set_params)
    statement = sql.SQL("EXPLAIN ") + query
    plan = "\n".join(r[0] for r in conn.execute(statement, params).fetchall())
    conn.rollback()
    return plan


def test_each_model_keeps_its_own_dimension_and_finds_its_own_nearest_track(two_models: dict[str, Any]) -> None:
    services, ids, vectors = two_models["services"], two_models["ids"], two_models["vectors"]
    with services.db.connection() as conn:
        store = TrackStore(conn)
        assert store.vector_dims(BASE) == 384
        assert store.vector_dims(SMALL) == 64
        for model, vecs in vectors.items():
            hits = store.search(vecs[42], model, 5, ef_search=100)
            conn.commit()
            assert hits[0].id == ids[42]
            assert hits[0].score == pytest.approx(1.0, abs=1e-5)
            got = store.vector_of(ids[42], model)
            assert got is not None and got.shape == (vecs.shape[1],)


def test_search_of_each_model_scans_that_models_hnsw_index(two_models: dict[str, Any]) -> None:
    services, vectors = two_models["services"], two_models["vectors"]
    with services.db.connection() as conn:
        conn.execute("SET enable_seqscan = off")  # 600 rows: make the planner show what it *can* use
        for model, vecs in vectors.items():
            plan = _plan_of_search(conn, vecs[0], model)
            assert f"Index Scan using {hnsw_index_name(model)}" in plan, plan


def test_filtered_search_over_the_small_model_returns_only_matching_tracks(two_models: dict[str, Any]) -> None:
    services, ids, vectors = two_models["services"], two_models["ids"], two_models["vectors"]
    with services.db.connection() as conn:
        hits = filtered_search(conn, vectors[SMALL][7], SMALL, 5, TrackFilter(source="dims"), exclude=[ids[7]])
        conn.commit()
    assert len(hits) == 5
    assert ids[7] not in {h.id for h in hits}
