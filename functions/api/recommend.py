"""``POST /recommend``: tracks near what a listener liked and away from what they disliked."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.api.errors import ApiError
from functions.api.params import json_body
from functions.api.routing import Call
from shared.models import SearchHit
from shared.store.browse import TrackFilter
from shared.store.search import filtered_search

__all__ = ["DISLIKE_WEIGHT", "RecommendRequest", "Recommendations", "recommend"]

# Rocchio's negative-feedback weight: a dislike pushes away half as hard as a like pulls.
DISLIKE_WEIGHT = 0.5


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    liked: list[int] = Field(min_length=1, max_length=100, description="track ids the listener liked")
    disliked: list[int] = Field(default_factory=list, max_length=100, description="track ids to steer away from")
    k: int = Field(default=10, ge=1, le=100, description="number of recommendations")
    filters: TrackFilter = Field(default_factory=TrackFilter, description="the browse filters")

    @model_validator(mode="after")
    def _disjoint(self) -> RecommendRequest:
        if set(self.liked) & set(self.disliked):
            raise ValueError("a track is both liked and disliked")
        return self


class Recommendations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    results: list[SearchHit]


def _vectors(conn: Any, model_key: str, ids: list[int]) -> dict[int, np.ndarray]:
    rows = conn.execute(
        "SELECT track_id, embedding FROM embeddings WHERE model = %s AND track_id = ANY(%s)", (model_key, ids)
    ).fetchall()
    return {int(tid): np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32) for tid, v in rows}


def recommend(call: Call) -> Recommendations:
    req = json_body(call.request, RecommendRequest, what="recommendation request")
    svc = call.services
    model_key = svc.search_model_key()
    inputs = sorted(set(req.liked) | set(req.disliked))
    with svc.db.connection() as conn:
        vectors = _vectors(conn, model_key, inputs)
        missing = [tid for tid in inputs if tid not in vectors]
        if missing:
            found = {r[0] for r in conn.execute("SELECT id FROM tracks WHERE id = ANY(%s)", (missing,)).fetchall()}
            conn.commit()
            unknown = len(missing) - len(found)
            # Counts, not ids: error bodies never echo what was sent.
            if unknown:
                raise ApiError(404, "not_found", f"{unknown} of the given tracks not found")
            raise ApiError(409, "not_embedded", f"{len(missing)} of the given tracks not embedded yet")
        query = np.mean([vectors[t] for t in set(req.liked)], axis=0)
        if req.disliked:
            query = query - DISLIKE_WEIGHT * np.mean([vectors[t] for t in set(req.disliked)], axis=0)
        norm = float(np.linalg.norm(query))
        if norm < 1e-6:  # the dislikes cancel the likes: recommend from the likes alone
            query = np.mean([vectors[t] for t in set(req.liked)], axis=0)
            norm = float(np.linalg.norm(query))
        hits = filtered_search(
            conn,
            (query / norm).astype(np.float32),
            model_key,
            req.k,
            req.filters,
            exclude=inputs,
            ef_search=svc.settings.hnsw_ef_search,
        )
        conn.commit()
    return Recommendations(model=model_key, results=hits)
