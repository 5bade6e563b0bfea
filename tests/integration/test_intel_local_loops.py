"""The local runtime's content-intelligence loops: a tick scrapes, then enrich and analyze follow."""

from __future__ import annotations

import time
from collections.abc import Callable

from local.intel_workers import intel_loops
from local.workers import EmbedWorker
from shared.services import Services
from tests.intel_fixtures import intel_services, source_server  # noqa: F401
from tests.servers.source_server import SourceServer


def test_a_scrape_tick_flows_through_enrich_and_analyze(
    intel_services: Callable[..., Services],  # noqa: F811
    source_server: SourceServer,  # noqa: F811
) -> None:
    artist = source_server.songs[1]["artist"]
    feed = {"name": "g", "kind": "genius", "url": source_server.url, "artists": [artist]}
    services = intel_services(scrape_sources=[feed], worker_poll_s=0.05)
    # As in the local runtime, enrich and analyze wait for the embed worker to drain its queue.
    loops = [EmbedWorker(services), *intel_loops(services)]
    for loop in loops:
        loop.start()
    try:
        deadline = time.monotonic() + 60
        analysed = 0
        while time.monotonic() < deadline:
            with services.db.connection() as conn:
                tracks = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
                analysed = conn.execute("SELECT count(DISTINCT track_id) FROM analyses").fetchone()[0]
                conn.commit()
            if tracks and analysed == tracks:
                break
            time.sleep(0.1)
    finally:
        for loop in loops:
            loop.stop()
    assert tracks > 0 and analysed == tracks
