"""``GET /tracks/{id}`` (the track's whole profile) and ``DELETE /tracks/{id}``."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict

from functions.api.errors import not_found
from functions.api.routing import Call
from shared.store.profile import TrackProfile, track_profile
from shared.store.provenance import Removal, delete_tracks, record_removed

__all__ = ["TrackDeleted", "TrackProfile", "delete_track", "get_track"]


class TrackDeleted(BaseModel):
    """What ``DELETE /tracks/{id}`` removed: the track and every row derived from it."""

    model_config = ConfigDict(extra="forbid")

    track_id: int
    removed: Removal


def get_track(call: Call) -> TrackProfile:
    with call.services.db.connection() as conn:
        profile = track_profile(conn, call.id)
        conn.commit()
    if profile is None:
        raise not_found("track")
    return profile


def delete_track(call: Call) -> TrackDeleted:
    """Delete one track with its embeddings, enrichments, analyses, provenance and queued jobs,
    whatever fed it. A track already gone is a 404 and changes nothing."""
    started = time.perf_counter()
    track_id = call.id
    with call.services.db.connection() as conn:
        removal = delete_tracks(conn, [track_id])
        if removal.tracks == 0:
            conn.rollback()
            raise not_found("track")
        elapsed_ms = (time.perf_counter() - started) * 1000
        record_removed(conn, removal, cause="request:DELETE /tracks/{id}", duration_ms=elapsed_ms)
        conn.commit()
    return TrackDeleted(track_id=track_id, removed=removal)
