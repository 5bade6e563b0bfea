"""scrape against the local Genius-compatible / JSON-feed server and a real Postgres."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from functions.scrape.core import handle_tick
from functions.scrape.fetchers import extract_lyrics
from shared.events import ScheduleTick
from shared.observability.traces import configure_tracing
from shared.services import Services
from tests.intel_fixtures import intel_services, source_server  # noqa: F401
from tests.servers.otlp_receiver import OtlpReceiver
from tests.servers.source_server import SourceServer
from tests.trace_fixtures import otlp_receiver, wait_for_spans  # noqa: F401

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def tick(minutes: int = 0) -> ScheduleTick:
    return ScheduleTick(schedule="scrape-hourly", fired_at=T0 + timedelta(minutes=minutes))


def genius(server: SourceServer, **extra: object) -> dict[str, object]:
    artists = sorted({s["artist"] for s in server.songs.values()})[:3]
    return {"name": "genius", "kind": "genius", "url": server.url, "artists": artists, "token": "g-token", **extra}


def count(services: Services, sql: str) -> int:
    with services.db.connection() as conn:
        row = conn.execute(sql).fetchone()
        conn.commit()
    return int(row[0]) if row else 0


def songs_of(server: SourceServer, source: dict[str, object]) -> int:
    names = set(source["artists"])  # type: ignore[arg-type]
    return sum(1 for s in server.songs.values() if s["artist"] in names)


def test_scraping_the_source_twice_stores_each_track_once(
    intel_services: Callable[..., Services],  # noqa: F811
    source_server: SourceServer,  # noqa: F811
) -> None:
    source = genius(source_server)
    services = intel_services(scrape_sources=[source])
    first = handle_tick(tick(0), services).result
    expected = songs_of(source_server, source)
    assert first.stored == expected > 0
    assert count(services, "SELECT count(*) FROM tracks") == expected
    # Downstream work for each new track, in the same transaction.
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'embed'") == expected
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'enrich'") == expected
    # A later tick (the cursor re-reads each artist's last page) stores nothing new.
    second = handle_tick(tick(60), services).result
    assert second.stored == 0
    assert count(services, "SELECT count(*) FROM tracks") == expected
    # The same tick delivered again is answered from its idempotency record.
    again = handle_tick(tick(60), services)
    assert again.replayed is True and again.result == second
    assert all(r.headers.get("authorization") == "Bearer g-token" for r in source_server.requests_to("/search"))


def test_the_same_song_from_two_sources_is_stored_once(
    intel_services: Callable[..., Services],  # noqa: F811
    source_server: SourceServer,  # noqa: F811
) -> None:
    feed = {"name": "feed", "kind": "json_feed", "url": source_server.url + "/feed", "max_pages": 50}
    services = intel_services(scrape_sources=[genius(source_server), feed])
    report = handle_tick(tick(), services).result
    assert count(services, "SELECT count(*) FROM tracks") == len(source_server.songs)
    feed_report = next(r for r in report.sources if r.source == "feed")
    assert feed_report.duplicates == songs_of(source_server, genius(source_server))


def test_a_json_feed_resumes_from_its_stored_cursor(
    intel_services: Callable[..., Services],  # noqa: F811
    source_server: SourceServer,  # noqa: F811
) -> None:
    feed = {"name": "feed", "kind": "json_feed", "url": source_server.url + "/feed", "max_pages": 2}
    services = intel_services(scrape_sources=[feed])
    first = handle_tick(tick(0), services).result
    assert first.stored == 8  # two pages of four
    handle_tick(tick(1), services)
    cursors = [r.query.get("cursor", [None])[0] for r in source_server.requests_to("/feed")]
    assert cursors == [None, "4", "8", "12"]
    assert count(services, "SELECT count(*) FROM tracks") == 16
    with services.db.connection() as conn:
        row = conn.execute("SELECT cursor, items_total FROM scrape_cursors WHERE source = 'feed'").fetchone()
        conn.commit()
    assert row == ({"cursor": "16"}, 16)


def test_a_source_answering_429_is_slowed_not_hammered(
    intel_services: Callable[..., Services],  # noqa: F811
    source_server: SourceServer,  # noqa: F811
) -> None:
    source_server.throttle["/search"] = 2  # Retry-After: 1 each time
    services = intel_services(scrape_sources=[genius(source_server)])
    report = handle_tick(tick(), services).result
    assert report.status == "ok"
    searches = source_server.requests_to("/search")
    gaps = [b.at - a.at for a, b in itertools.pairwise(searches)]
    assert len(searches) == 3 + 2  # 2 refused + the 3 artists, nothing more
    assert gaps[0] >= 0.95 and gaps[1] >= 0.95


def test_malformed_pages_are_skipped_and_a_down_source_keeps_its_progress(
    intel_services: Callable[..., Services],  # noqa: F811
    source_server: SourceServer,  # noqa: F811
) -> None:
    source = genius(source_server)
    names = set(source["artists"])  # type: ignore[arg-type]
    mine = [sid for sid, s in source_server.songs.items() if s["artist"] in names]
    source_server.malformed.add(mine[0])
    services = intel_services(scrape_sources=[source], http_max_retries=1)
    report = handle_tick(tick(0), services).result.sources[0]
    assert report.skipped == 1 and "no lyrics" in report.skip_reasons[0]
    assert report.stored == len(mine) - 1
    # The source then fails for good: the tick reports it, nothing is lost, nothing raises.
    source_server.errors["/artists"] = 100
    report = handle_tick(tick(60), services).result.sources[0]
    assert report.status == "partial" and report.error is not None and "500" in report.error
    assert count(services, "SELECT count(*) FROM tracks") == len(mine) - 1


def test_lyrics_are_read_from_every_container_block() -> None:
    page = (
        '<html><div data-lyrics-container="true">one<br/>two &amp; a <i>half</i></div><p>ad</p>'
        '<div data-lyrics-container="true"><div>three</div><br>four</div></html>'
    )
    assert extract_lyrics(page) == "one\ntwo & a half\nthree\nfour"
    assert extract_lyrics("<html><div>nothing</div></html>") is None


def test_every_scraped_track_is_linked_to_its_pages_and_a_duplicate_to_the_stored_track(
    intel_services: Callable[..., Services],  # noqa: F811
    source_server: SourceServer,  # noqa: F811
) -> None:
    # GIVEN a lyrics source and a feed carrying some of the same songs
    feed = {"name": "feed", "kind": "json_feed", "url": source_server.url + "/feed", "max_pages": 50}
    lyrics = genius(source_server)
    services = intel_services(scrape_sources=[lyrics, feed])
    # WHEN both are scraped
    handle_tick(tick(), services)
    # THEN each lyrics-source track is linked to its own song page
    song_pages = count(
        services,
        "SELECT count(*) FROM track_pages p JOIN tracks t ON t.id = p.track_id"
        " WHERE p.source = 'genius' AND p.url = t.metadata->>'url'",
    )
    assert song_pages == songs_of(source_server, lyrics)
    # AND every track is linked to a feed page, the songs both carry included (the feed's copy was
    # dropped as a duplicate, yet the stored track still names the feed page it also came from)
    assert count(services, "SELECT count(DISTINCT track_id) FROM track_pages WHERE source = 'feed'") == len(
        source_server.songs
    )
    assert count(services, "SELECT count(*) FROM track_pages WHERE source = 'feed' AND url NOT LIKE '%/feed%'") == 0
    # AND a second scrape links nothing twice
    before = count(services, "SELECT count(*) FROM track_pages")
    handle_tick(tick(60), services)
    assert count(services, "SELECT count(*) FROM track_pages") == before


def test_a_scrape_tick_is_one_trace_whose_source_span_parents_the_jobs_it_enqueues(
    intel_services: Callable[..., Services],  # noqa: F811
    source_server: SourceServer,  # noqa: F811
    otlp_receiver: OtlpReceiver,  # noqa: F811
) -> None:
    configure_tracing("contentfn-scrape", otlp_receiver.endpoint)
    source = genius(source_server)
    services = intel_services(scrape_sources=[source])
    # WHEN a tick scrapes the source with tracing on
    stored = handle_tick(tick(0), services).result.stored
    ticks = wait_for_spans(otlp_receiver, "scrape tick", 1)
    sources = wait_for_spans(otlp_receiver, "scrape source", 1)
    # THEN the tick is a trace's root and the source's span its child, with what it stored
    assert len(ticks) == 1 and ticks[0].parent_id is None
    assert len(sources) == 1 and sources[0].parent_id == ticks[0].span_id
    assert sources[0].attributes["scrape.source"] == "genius" and sources[0].attributes["scrape.stored"] == stored > 0
    # AND every job the scrape enqueued carries that trace, so its stages join it
    with services.db.connection() as conn:
        parents = [r[0] for r in conn.execute("SELECT traceparent FROM jobs").fetchall()]
        conn.commit()
    assert parents and all(p and p.split("-")[1] == ticks[0].trace_id for p in parents)
