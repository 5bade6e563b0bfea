"""enrich against the local Spotify-compatible server and a real Postgres."""

from __future__ import annotations

from collections.abc import Callable

from functions.enrich.core import enrich_job, run_enrich_batch, spotify_for
from functions.enrich.spotify import match_score, normalize_name
from shared.models import TrackIn
from shared.services import Services
from shared.store.tracks import upsert_tracks
from tests.intel_fixtures import intel_services, sample_rows, spotify_server  # noqa: F401
from tests.servers.spotify_server import SpotifyServer


def spotify_settings(server: SpotifyServer) -> dict[str, object]:
    return {
        "spotify_api_url": server.url,
        "spotify_token_url": server.url + "/api/token",
        "spotify_client_id": "cid",
        "spotify_client_secret": "csecret",
    }


def load(services: Services, rows: list[dict[str, object]]) -> list[int]:
    items = [TrackIn(artist=r["artist"], title=r["title"], lyrics=r["lyrics"], source_id=r["id"]) for r in rows]
    with services.db.connection() as conn:
        result = upsert_tracks(conn, items)
        conn.commit()
    return sorted(c.id for c in result.content_changed)


def rows_of(services: Services, sql: str) -> list[tuple[object, ...]]:
    with services.db.connection() as conn:
        rows = conn.execute(sql).fetchall()
        conn.commit()
    return rows


def test_features_and_metadata_are_stored_and_analysis_is_queued(
    intel_services: Callable[..., Services],  # noqa: F811
    spotify_server: SpotifyServer,  # noqa: F811
) -> None:
    services = intel_services(**spotify_settings(spotify_server))
    ids = load(services, sample_rows(4))
    services.queue.enqueue_many([enrich_job(t, "h") for t in ids])
    outcome = run_enrich_batch(services)
    assert (outcome.claimed, outcome.done) == (4, 4)
    kinds = rows_of(services, "SELECT kind, count(*) FROM enrichments GROUP BY kind ORDER BY kind")
    assert kinds == [("features", 4), ("metadata", 4)]
    meta = rows_of(services, "SELECT data FROM enrichments WHERE kind = 'metadata' ORDER BY track_id")
    # "Evening Tide - Remastered 2011" by "Tidewater Brothers" matches "Evening Tide" by "The Tidewater Brothers".
    assert all(m[0]["matched"] for m in meta) and meta[0][0]["audio_features"]["tempo"] == 120.0
    features = rows_of(services, "SELECT data FROM enrichments WHERE kind = 'features' LIMIT 1")[0][0]
    assert {"rhyme_density", "syllables_per_word", "sentiment", "mattr", "chorus_lines", "explicit"} <= set(features)
    assert rows_of(services, "SELECT count(*) FROM jobs WHERE kind = 'analyze'") == [(4,)]
    # One token for the whole batch: cached until it expires.
    assert len(spotify_server.requests_to("/api/token")) == 1


def test_an_expired_token_is_refreshed_once(
    intel_services: Callable[..., Services],  # noqa: F811
    spotify_server: SpotifyServer,  # noqa: F811
) -> None:
    services = intel_services(**spotify_settings(spotify_server))
    client = spotify_for(services)
    assert client is not None
    client.find_track("Marin Callow", "Salt in the Sails")
    spotify_server.tokens.clear()  # the server forgets every token (expiry)
    assert client.find_track("Marin Callow", "Salt in the Sails")["matched"]
    assert len(spotify_server.requests_to("/api/token")) == 2


def test_an_unknown_song_is_stored_as_unmatched(
    intel_services: Callable[..., Services],  # noqa: F811
    spotify_server: SpotifyServer,  # noqa: F811
) -> None:
    services = intel_services(**spotify_settings(spotify_server))
    client = spotify_for(services)
    assert client is not None
    assert client.find_track("Nobody Known", "Tide Song Nobody Wrote")["matched"] is False


def test_without_spotify_settings_only_features_are_computed(intel_services: Callable[..., Services]) -> None:  # noqa: F811
    services = intel_services()
    ids = load(services, sample_rows(2))
    services.queue.enqueue_many([enrich_job(t, "h") for t in ids])
    assert run_enrich_batch(services).done == 2
    assert rows_of(services, "SELECT kind, count(*) FROM enrichments GROUP BY kind") == [("features", 2)]


def test_fuzzy_matching_ignores_what_catalogues_disagree_on() -> None:
    assert normalize_name("The Beatles") == "beatles"
    assert normalize_name("Hey Jude (Remastered 2015)") == "hey jude"
    assert normalize_name("Song - Live at Wembley") == "song"
    assert normalize_name("Café feat. Someone") == "cafe"
    assert (
        match_score("The Tidewater Brothers", "Evening Tide", ["Tidewater Brothers"], "Evening Tide - Remastered")
        > 0.95
    )
    assert match_score("A", "Evening Tide", ["Z"], "Morning Glory") < 0.5


def test_audio_features_refused_with_403_leave_the_track_enriched_and_say_so(
    intel_services: Callable[..., Services],  # noqa: F811
    spotify_server: SpotifyServer,  # noqa: F811
) -> None:
    # GIVEN a catalogue that refuses audio features to this app, as Spotify does for new apps
    spotify_server.audio_features_forbidden = True
    services = intel_services(**spotify_settings(spotify_server))
    ids = load(services, sample_rows(2))
    services.queue.enqueue_many([enrich_job(t, "h") for t in ids])
    # WHEN the tracks are enriched
    outcome = run_enrich_batch(services)
    # THEN they are done, not dead: the match is stored without features, with the reason
    assert (outcome.claimed, outcome.done) == (2, 2)
    assert rows_of(services, "SELECT count(*) FROM dead_jobs") == [(0,)]
    meta = [r[0] for r in rows_of(services, "SELECT data FROM enrichments WHERE kind = 'metadata' ORDER BY track_id")]
    assert [(m["matched"], m["audio_features"], m["audio_features_unavailable"]) for m in meta] == [
        (True, None, "forbidden"),
        (True, None, "forbidden"),
    ]
    assert len(spotify_server.requests_to("/v1/audio-features/")) == 2  # asked, refused, not retried
    assert rows_of(services, "SELECT count(*) FROM jobs WHERE kind = 'analyze'") == [(2,)]
