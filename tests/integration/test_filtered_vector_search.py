"""Filtered vector search on a real HNSW index returns k results, with recall measured against the
exact filtered scan: clustered unit vectors in real PostgreSQL + pgvector."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shared.models import TrackIn
from shared.services import Services
from shared.store.browse import TrackFilter
from shared.store.search import exact_filtered_search, filtered_search
from shared.store.tracks import TrackStore, upsert_tracks

MODEL = "test-vectors@1"
ROWS = 4000
CLUSTERS = 40
K = 10


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture
def catalogue(services: Services) -> dict[str, Any]:
    """4,000 tracks in 40 clusters. Sources: 'tenth' on a random ~10%, 'rare' on 30 tracks,
    'far' on every track of clusters 30-39; the rest 'bulk'. An HNSW index over the vectors."""
    rng = np.random.default_rng(11)
    centers = _unit(rng.normal(size=(CLUSTERS, 384)))
    cluster = rng.integers(0, CLUSTERS, size=ROWS)
    vectors = _unit(centers[cluster] + rng.normal(scale=0.06, size=(ROWS, 384)))
    draw = rng.random(ROWS)
    sources = [
        "far" if c >= 30 else "rare" if i < 30 else "tenth" if d < 0.1 else "bulk"
        for i, (c, d) in enumerate(zip(cluster, draw, strict=True))
    ]
    rows = [
        TrackIn(artist=f"a{i % 97}", title=f"t{i}", lyrics=f"line {i}", source=src, source_id=str(i))
        for i, src in enumerate(sources)
    ]
    with services.db.connection() as conn:
        upsert_tracks(conn, rows)
        ids = dict(conn.execute("SELECT source_id, id FROM tracks").fetchall())
        hashes = dict(conn.execute("SELECT id, content_hash FROM tracks").fetchall())
        track_ids = [int(ids[str(i)]) for i in range(ROWS)]
        store = TrackStore(conn)
        store.write_embeddings(MODEL, track_ids, [hashes[t] for t in track_ids], vectors)
        store.ensure_hnsw_index(MODEL)
        conn.execute("ANALYZE tracks")
        conn.execute("ANALYZE embeddings")
        conn.commit()
    # Queries near the clusters that hold no 'far' track.
    queries = _unit(centers[rng.integers(0, 30, size=50)] + rng.normal(scale=0.06, size=(50, 384)))
    return {"queries": queries, "services": services}


def _compare(services: Services, queries: np.ndarray, flt: TrackFilter) -> tuple[float, list[int]]:
    recalls, counts = [], []
    with services.db.connection() as conn:
        for q in queries:
            got = filtered_search(conn, q, MODEL, K, flt, ef_search=40)
            conn.commit()
            exact = exact_filtered_search(conn, q, MODEL, K, flt)
            conn.commit()
            counts.append(len(got))
            recalls.append(len({h.id for h in got} & {h.id for h in exact}) / max(1, len(exact)))
    return float(np.mean(recalls)), counts


def test_a_filter_keeping_a_tenth_still_returns_k_with_recall_over_095(catalogue: dict[str, Any]) -> None:
    recall, counts = _compare(catalogue["services"], catalogue["queries"], TrackFilter(source="tenth"))
    assert counts == [K] * len(counts)
    assert recall >= 0.95


def test_a_filter_keeping_thirty_tracks_returns_k_by_widening_to_the_exact_scan(catalogue: dict[str, Any]) -> None:
    recall, counts = _compare(catalogue["services"], catalogue["queries"], TrackFilter(source="rare"))
    assert counts == [K] * len(counts) and recall == 1.0


def test_a_filter_far_from_the_query_still_returns_k_with_recall_over_095(catalogue: dict[str, Any]) -> None:
    # No 'far' track lies near any query: the matches sit deep in the candidates, at nearly equal
    # distances, the hardest case for an approximate index (and for the trust rule on the head).
    recall, counts = _compare(catalogue["services"], catalogue["queries"], TrackFilter(source="far"))
    assert counts == [K] * len(counts) and recall >= 0.95


def test_excluded_ids_never_come_back_and_k_is_kept(catalogue: dict[str, Any]) -> None:
    services = catalogue["services"]
    q = catalogue["queries"][0]
    with services.db.connection() as conn:
        first = [h.id for h in TrackStore(conn).search(q, MODEL, K, ef_search=40)]
        conn.commit()
        again = filtered_search(conn, q, MODEL, K, TrackFilter(), exclude=first, ef_search=40)
        conn.commit()
    assert len(again) == K and not set(first) & {h.id for h in again}
