"""``/search``, ``/tracks/{id}`` and ``/tracks/{id}/similar``: tracks and their nearest neighbours by
embedding."""

from __future__ import annotations

import hashlib
import time

from pydantic import BaseModel

from functions.api.errors import ApiError, not_found
from functions.api.routing import Call
from shared.metrics import CACHE_REQUESTS
from shared.models import SearchHit, Track
from shared.store.tracks import TrackStore

__all__ = ["SearchResults", "SimilarTracks", "TrackDetail", "get_track", "search", "similar"]


class SearchResults(BaseModel):
    model: str
    results: list[SearchHit]
    timings_ms: dict[str, float]


class SimilarTracks(BaseModel):
    model: str
    results: list[SearchHit]


class TrackDetail(Track):
    embedded_models: list[str]


def search(call: Call) -> SearchResults:
    svc = call.services
    query: str = call.query["q"]
    t0 = time.perf_counter()
    embedder = svc.embedder
    # Hashed: a shared cache (Redis) keeps no readable copy of what users searched for.
    cache_key = f"qvec:{embedder.model_key}:{hashlib.sha256(query.encode()).hexdigest()}"
    vector = svc.cache.get(cache_key)
    CACHE_REQUESTS.labels("query", "miss" if vector is None else "hit").inc()
    if vector is None:
        vector = embedder.embed([query])[0]
        svc.cache.set(cache_key, vector, ttl_s=3600)
    t1 = time.perf_counter()
    with svc.db.connection() as conn:
        hits = TrackStore(conn).search(
            vector,
            embedder.model_key,
            call.query["k"],
            artist=call.query["artist"],
            ef_search=svc.settings.hnsw_ef_search,
        )
        conn.commit()
    t2 = time.perf_counter()
    return SearchResults(
        model=embedder.model_key,
        results=hits,
        timings_ms={"embed": round((t1 - t0) * 1000, 2), "db": round((t2 - t1) * 1000, 2)},
    )


def get_track(call: Call) -> TrackDetail:
    with call.services.db.connection() as conn:
        track = TrackStore(conn).get(call.id)
        models = [
            r[0]
            for r in conn.execute(
                "SELECT model FROM embeddings WHERE track_id = %s ORDER BY model", (call.id,)
            ).fetchall()
        ]
        conn.commit()
    if track is None:
        raise not_found("track")
    return TrackDetail(**track.model_dump(), embedded_models=models)


def similar(call: Call) -> SimilarTracks:
    svc = call.services
    model_key = svc.embedder.model_key
    track_id, k = call.id, call.query["k"]
    with svc.db.connection() as conn:
        store = TrackStore(conn)
        vector = store.vector_of(track_id, model_key)
        if vector is None:
            conn.commit()
            exists = store.get(track_id) is not None
            raise ApiError(409, "not_embedded", "track is not embedded yet") if exists else not_found("track")
        hits = store.search(vector, model_key, k + 1, ef_search=svc.settings.hnsw_ef_search)
        conn.commit()
    return SimilarTracks(model=model_key, results=[h for h in hits if h.id != track_id][:k])
