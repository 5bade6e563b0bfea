"""On Google Cloud, what waits in a Pub/Sub subscription is read from Cloud Monitoring: admission of
images counts the detect backlog, and embed defers its first index while a bulk load is still
queued. Real PostgreSQL and entry points; Cloud Monitoring answers at the client boundary."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from google.cloud import monitoring_v3

from functions.ingest.core import handle_object_created
from functions.ingest.reports import ImageReport
from shared.config import Settings
from shared.events import ObjectCreated
from shared.platform.runtime import FunctionRuntime
from shared.queue.backlog import SubscriptionBacklog
from shared.services import Services
from tests.entry_fixtures import count, ff_client, put_local, send_capture
from tests.event_files import load_event
from tests.functional.test_gcp_handlers import BUCKET, _first_track, _push_for
from tests.functional.test_queue_backlog import FakeMetrics, point
from tests.vision_fixtures import distinct_jpegs

DETECT_SUB = "projects/acme-dev/subscriptions/contentfn-dev-detect"
EMBED_SUB = "projects/acme-dev/subscriptions/contentfn-dev-embed"


def backlog_of(subscription: str, waiting: int) -> SubscriptionBacklog:
    series = [monitoring_v3.TimeSeries(points=[point(0, waiting)])] if waiting >= 0 else []
    return SubscriptionBacklog(FakeMetrics(series), subscription)


def test_image_admission_counts_what_waits_in_the_detect_subscription(
    entry_env: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a producer on Google Cloud whose detect jobs go to Pub/Sub, and a fleet that drains 4
    # images within the target latency
    monkeypatch.setenv("CONTENTFN_QUEUE_BACKLOGS", json.dumps({"detect": DETECT_SUB}))
    for name, value in {"MAX_INSTANCES": "1", "EXPECTED_IMG_PER_S": "1", "TARGET_LATENCY_S": "4"}.items():
        monkeypatch.setenv(f"CONTENTFN_GPU_{name}", value)
    runtime = FunctionRuntime("ingest", "gcp")
    try:
        # WHEN 500 detection jobs wait in the subscription (as Cloud Monitoring last sampled it)
        runtime._backlogs[DETECT_SUB] = backlog_of(DETECT_SUB, 500)
        (image,) = distinct_jpegs(1, seed=5)
        put_local(entry_env, BUCKET, "images/a.jpg", image)
        info = runtime.services.blob.stat(BUCKET, "images/a.jpg")
        report = handle_object_created(
            ObjectCreated(bucket=BUCKET, key="images/a.jpg", generation=info.generation), runtime.services
        ).result
    finally:
        runtime.close()
    # THEN admission saw them and deferred the new job instead of piling it on
    assert isinstance(report, ImageReport) and report.admission is not None
    gate = report.admission
    assert not gate["admit"] and gate["backlog"] >= 500 and gate["defer_s"] > 0
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'detect' AND visible_at > now()") == 1


@pytest.mark.parametrize(("waiting", "index"), [(5000, "missing"), (0, "valid")])
def test_pushed_embed_jobs_build_the_index_only_once_the_subscription_has_drained(
    entry_env: Settings, services: Services, model_dir: Any, monkeypatch: pytest.MonkeyPatch, waiting: int, index: str
) -> None:
    from shared.store.tracks import TrackStore

    monkeypatch.setenv("CONTENTFN_QUEUE_BACKLOGS", json.dumps({"embed": EMBED_SUB}))
    monkeypatch.setenv("CONTENTFN_HNSW_DEFER_BACKLOG", "100")
    put_local(entry_env, BUCKET, "incoming/tracks.jsonl", _tracks(3))
    send_capture(ff_client("ingest", "ingest", "cloudevent"), _storage_event("incoming/tracks.jsonl"))
    track_id, chash = _first_track(services)
    client = ff_client("embed", "embed", "http")
    # GIVEN `waiting` embed jobs still in the push subscription, as Cloud Monitoring reports it
    sys.modules["gcp"].runtime._backlogs[EMBED_SUB] = backlog_of(EMBED_SUB, waiting)
    # WHEN one pushed job is embedded
    doc = _push_for(
        load_event("gcp_pubsub_push_job.json"),
        {"kind": "embed", "payload": {"track_id": track_id, "content_hash": chash}},
    )
    assert send_capture(client, doc).status_code == 204
    # THEN the first HNSW index waits while a bulk load is queued, and is built once none is
    with services.db.connection() as conn:
        key = conn.execute("SELECT model FROM embeddings LIMIT 1").fetchone()
        assert key is not None
        assert TrackStore(conn).hnsw_index_state(key[0]) == index
        conn.commit()


def _tracks(n: int) -> bytes:
    rows = [{"id": i, "artist": "A", "title": f"T{i}", "lyrics": f"a song about the sea {i}"} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _storage_event(key: str) -> dict[str, Any]:
    doc = load_event("gcp_storage_finalized_binary.json")
    body = doc["body"]
    body["name"] = key
    body["bucket"] = BUCKET
    doc["headers"]["Ce-Subject"] = f"objects/{key}"
    return doc
