"""``/search`` and ``/tracks/{id}/similar``: search by meaning, by words or both (hybrid, the
default), and nearest neighbours by embedding; both take the browse filters. (``/tracks/{id}``
itself, the whole profile, is :mod:`functions.api.profile`.)"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from functions.api.errors import ApiError, bad_param, not_found
from functions.api.filters import track_filter
from functions.api.routing import Call
from shared.metrics import CACHE_REQUESTS
from shared.models import SearchHit
from shared.services import Services
from shared.store.search import filtered_search, fuse_rrf, keyword_search
from shared.store.tracks import TrackStore

if TYPE_CHECKING:
    from shared.embedder.base import Embedder

__all__ = [
    "HYBRID_POOL",
    "SEARCH_MODES",
    "SearchResults",
    "SimilarTracks",
    "query_cache_key",
    "search",
    "similar",
]

SEARCH_MODES = ("hybrid", "semantic", "keyword")
# Each ranking hybrid search fuses is this deep: a track the keyword ranking puts first still
# fuses with its semantic rank when that lies well below the k shown.
HYBRID_POOL = 50


class SearchResults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    mode: str = Field(description="hybrid, semantic or keyword")
    results: list[SearchHit] = Field(
        description="best first; score: cosine similarity (semantic), full-text rank (keyword), fused RRF score (hybrid)"
    )
    timings_ms: dict[str, float]


class SimilarTracks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    results: list[SearchHit]


def query_cache_key(model_key: str, query: str) -> str:
    """Where a query's vector is cached. Hashed: a shared cache (Redis) keeps no readable copy of
    what users searched for."""
    return f"qvec:{model_key}:{hashlib.sha256(query.encode()).hexdigest()}"


def _query_vector(svc: Services, embedder: Embedder, query: str) -> Any:
    cache_key = query_cache_key(embedder.model_key, query)
    vector = svc.cache.get(cache_key)
    CACHE_REQUESTS.labels("query", "miss" if vector is None else "hit").inc()
    if vector is None:
        vector = embedder.embed([query])[0]
        svc.cache.set(cache_key, vector, ttl_s=3600)
    return vector


def search(call: Call) -> SearchResults:
    svc = call.services
    query: str = call.query["q"]
    mode: str = call.query["mode"]
    if mode not in SEARCH_MODES:
        raise bad_param("mode", f"must be one of {', '.join(SEARCH_MODES)}")
    flt = track_filter(call.query)
    k: int = call.query["k"]
    ef = svc.settings.hnsw_ef_search
    embedder = svc.search_embedder()  # the registry's active model, as of this request
    model_key = embedder.model_key
    t0 = time.perf_counter()
    vector = None if mode == "keyword" else _query_vector(svc, embedder, query)
    t1 = time.perf_counter()
    with svc.db.connection() as conn:
        if vector is None:
            hits = keyword_search(conn, query, k, flt)
        elif mode == "semantic":
            hits = filtered_search(conn, vector, model_key, k, flt, ef_search=ef)
        else:
            pool = max(k, HYBRID_POOL)
            semantic = filtered_search(conn, vector, model_key, pool, flt, ef_search=max(ef, pool))
            hits = fuse_rrf([semantic, keyword_search(conn, query, pool, flt)], k, query=query)
        conn.commit()
    t2 = time.perf_counter()
    return SearchResults(
        model=model_key,
        mode=mode,
        results=hits,
        timings_ms={"embed": round((t1 - t0) * 1000, 2), "db": round((t2 - t1) * 1000, 2)},
    )


def similar(call: Call) -> SimilarTracks:
    svc = call.services
    model_key = svc.search_model_key()
    track_id, k = call.id, call.query["k"]
    with svc.db.connection() as conn:
        store = TrackStore(conn)
        vector = store.vector_of(track_id, model_key)
        if vector is None:
            conn.commit()
            exists = store.get(track_id) is not None
            raise ApiError(409, "not_embedded", "track is not embedded yet") if exists else not_found("track")
        flt = track_filter(call.query)
        if flt.empty:
            hits = store.search(vector, model_key, k + 1, ef_search=svc.settings.hnsw_ef_search)
            hits = [h for h in hits if h.id != track_id][:k]
        else:
            hits = filtered_search(
                conn, vector, model_key, k, flt, exclude=[track_id], ef_search=svc.settings.hnsw_ef_search
            )
        conn.commit()
    return SimilarTracks(model=model_key, results=hits)
