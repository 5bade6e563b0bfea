"""enrich: for one track, algorithmic features (always) and Spotify-compatible metadata (when a
client id and secret are configured), stored as ``enrichments``; then the analyze job is queued.

Features depend only on the text, so a redelivered job whose content hash is unchanged rewrites
nothing. A metadata lookup that keeps failing (API down) is retried by the queue; a track the
catalogue does not know is stored as ``matched: false`` — that is an answer, not an error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from functions.enrich.spotify import SpotifyClient
from shared.intel import store
from shared.intel.context import Intel, intel_for
from shared.intel.features import FEATURES_VERSION, compute_features
from shared.platform.jobs import JobOutcome, per_job, process_claimed, track_id_of
from shared.queue.base import ClaimedJob, JobAcks
from shared.queue.kinds import ENRICH_JOB, analyze_job, enrich_job
from shared.services import Services
from shared.store import ledger
from shared.store.tracks import TrackStore

__all__ = [
    "ENRICH_HANDLING",
    "ENRICH_JOB",
    "METADATA_VERSION",
    "STAGE",
    "EnrichReport",
    "enrich_claimed",
    "enrich_job",
    "enrich_track",
    "run_enrich_batch",
]

log = logging.getLogger(__name__)

STAGE = "enriched"
METADATA_VERSION = "spotify-v1"
_clients: dict[int, tuple[Intel, SpotifyClient | None]] = {}
_clients_lock = threading.Lock()


def spotify_for(services: Services) -> SpotifyClient | None:
    intel = intel_for(services)
    with _clients_lock:
        found = _clients.get(id(intel))
        if found is None or found[0] is not intel:
            s = services.settings
            client = None
            if s.spotify_client_id and s.spotify_client_secret is not None:
                client = SpotifyClient(
                    intel.http,
                    intel.cache,
                    api_url=s.spotify_api_url,
                    token_url=s.spotify_token_url,
                    client_id=s.spotify_client_id,
                    client_secret=s.spotify_client_secret.get_secret_value(),
                    min_match=s.spotify_min_match,
                )
            found = _clients[id(intel)] = (intel, client)
        return found[1]


@dataclass(frozen=True)
class EnrichReport:
    """What one enrich job wrote: ``written`` says per kind whether it changed (False: same version, same text)."""

    track_id: int
    features: dict[str, Any]
    metadata: dict[str, Any] | None
    written: dict[str, bool]


def enrich_track(track_id: int, services: Services) -> EnrichReport:
    """Compute and store this track's enrichments; returns what was written."""
    from functions.analyze.core import TrackNotFound

    started = time.perf_counter()
    with services.db.connection() as conn:
        track = TrackStore(conn).get(track_id)
        have = store.get_enrichment(conn, track_id, "metadata") if track is not None else None
        conn.commit()
    if track is None:
        raise TrackNotFound(f"track {track_id} not found")
    features = compute_features(track.lyrics).as_dict()
    metadata = None
    spotify = spotify_for(services)
    if spotify is not None and not (
        have and have["version"] == METADATA_VERSION and have["content_hash"] == track.content_hash
    ):
        metadata = spotify.find_track(track.artist, track.title)  # raises (and retries) when the API is down
    with services.db.connection() as conn:
        wrote = {
            "features": store.upsert_enrichment(
                conn, track_id, "features", FEATURES_VERSION, track.content_hash, features
            )
        }
        if metadata is not None:
            wrote["metadata"] = store.upsert_enrichment(
                conn, track_id, "metadata", METADATA_VERSION, track.content_hash, metadata
            )
        services.queue.enqueue_many([analyze_job(track_id, track.content_hash)], conn=conn)
        elapsed_ms = (time.perf_counter() - started) * 1000
        detail = {"written": wrote, "matched": None if metadata is None else metadata.get("matched")}
        ledger.record(conn, f"track:{track_id}", STAGE, "ok", detail=detail, duration_ms=elapsed_ms)
        conn.commit()
    return EnrichReport(track_id=track_id, features=features, metadata=metadata, written=wrote)


def enrich_claimed(claimed: Sequence[ClaimedJob], services: Services, *, acks: JobAcks | None = None) -> JobOutcome:
    return process_claimed(claimed, services, lambda c: enrich_track(track_id_of(c), services), acks=acks)


def run_enrich_batch(services: Services, limit: int = 16) -> JobOutcome:
    claimed = services.queue.claim(ENRICH_JOB, limit)
    if not claimed:
        return JobOutcome()
    return enrich_claimed(claimed, services)


# For the cloud entry points (shared.platform): pushed jobs and the outbox, each job on its own.
ENRICH_HANDLING = per_job(ENRICH_JOB, enrich_claimed, run_enrich_batch)
