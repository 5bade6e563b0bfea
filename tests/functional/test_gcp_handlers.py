"""functions-framework entry points, loaded as the framework loads them, driven with ``events/`` captures."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import pytest

from shared.config import Settings
from shared.services import Services
from tests.entry_fixtures import TEST_API_KEY, count, ff_client, put_local, sample_jsonl, send_capture
from tests.event_files import load_event

BUCKET = "contentfn-dev-uploads"
KEY = "incoming/Beyoncé tracks 2024.jsonl"


@pytest.fixture
def uploaded(entry_env: Settings) -> Settings:
    put_local(entry_env, BUCKET, KEY, sample_jsonl(20))
    return entry_env


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_storage_cloudevent_in_either_mode_ingests_the_object(
    uploaded: Settings, services: Services, mode: str
) -> None:
    client = ff_client("ingest", "ingest", "cloudevent")
    resp = send_capture(client, load_event(f"gcp_storage_finalized_{mode}.json"))
    assert resp.status_code == 200
    assert count(services, "SELECT count(*) FROM tracks") == 20


def test_cloudevent_of_another_type_is_dead_lettered_and_acknowledged(entry_env: Settings, services: Services) -> None:
    doc = load_event("gcp_storage_finalized_binary.json")
    doc["headers"]["Ce-Type"] = "google.cloud.storage.object.v1.metadataUpdated"
    resp = send_capture(ff_client("ingest", "ingest", "cloudevent"), doc)
    assert resp.status_code == 200
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'ingest'") == 1


def test_transient_error_answers_500_so_eventarc_retries(uploaded: Settings, services: Services) -> None:
    from shared.errors import TransientError

    client = ff_client("ingest", "ingest", "cloudevent")

    def down(event: Any, svc: Any) -> dict[str, Any]:
        raise TransientError("database restarting")

    sys.modules["gcp"].handle_object_created = down  # the module the framework loaded
    resp = send_capture(client, load_event("gcp_storage_finalized_binary.json"))
    assert resp.status_code == 500
    assert count(services, "SELECT count(*) FROM tracks") == 0
    assert count(services, "SELECT count(*) FROM idempotency") == 0  # the retry will run again


def _push_for(doc: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    doc["body"]["message"]["data"] = base64.b64encode(json.dumps(job).encode()).decode()
    return doc


def _first_track(services: Services) -> tuple[int, str]:
    with services.db.connection() as conn:
        row = conn.execute("SELECT id, content_hash FROM tracks ORDER BY id LIMIT 1").fetchone()
        conn.commit()
    assert row is not None
    return int(row[0]), str(row[1])


def test_pubsub_push_job_is_embedded_and_acknowledged_with_204(
    uploaded: Settings, services: Services, model_dir: Any
) -> None:
    send_capture(ff_client("ingest", "ingest", "cloudevent"), load_event("gcp_storage_finalized_binary.json"))
    track_id, chash = _first_track(services)
    client = ff_client("embed", "embed", "http")
    doc = _push_for(
        load_event("gcp_pubsub_push_job.json"),
        {"kind": "embed", "payload": {"track_id": track_id, "content_hash": chash}},
    )
    assert send_capture(client, doc).status_code == 204
    assert count(services, "SELECT count(*) FROM embeddings") == 1


def test_pubsub_push_poison_is_dead_lettered_and_acknowledged(
    entry_env: Settings, services: Services, model_dir: Any
) -> None:
    client = ff_client("embed", "embed", "http")
    doc = _push_for(load_event("gcp_pubsub_push_job.json"), {"kind": "embed", "payload": {"content_hash": "x"}})
    assert send_capture(client, doc).status_code == 204
    garbage = load_event("gcp_pubsub_push_job.json")
    garbage["body"] = {"not": "a push envelope"}
    assert send_capture(client, garbage).status_code == 204
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'embed'") == 2


def test_pubsub_push_transient_failure_answers_503_so_pubsub_redelivers(
    uploaded: Settings, services: Services, model_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.embed.core as embed_core

    def db_down(work: Any, svc: Any) -> Any:
        raise ConnectionError("database restarting")

    monkeypatch.setattr(embed_core, "_embed_and_commit", db_down)
    resp = send_capture(ff_client("embed", "embed", "http"), load_event("gcp_pubsub_push_job.json"))
    assert resp.status_code == 503 and b"retry" in resp.data
    assert count(services, "SELECT count(*) FROM dead_jobs") == 0


def test_eventarc_pubsub_job_runs_through_the_cloudevent_target(
    uploaded: Settings, services: Services, model_dir: Any
) -> None:
    send_capture(ff_client("ingest", "ingest", "cloudevent"), load_event("gcp_storage_finalized_binary.json"))
    track_id, chash = _first_track(services)
    doc = _push_for(
        load_event("gcp_pubsub_cloudevent_job.json"),
        {"kind": "embed", "payload": {"track_id": track_id, "content_hash": chash}},
    )
    assert send_capture(ff_client("embed", "embed_event", "cloudevent"), doc).status_code == 200
    assert count(services, "SELECT count(*) FROM embeddings") == 1


def test_cloud_scheduler_request_drains_the_outbox(uploaded: Settings, services: Services, model_dir: Any) -> None:
    send_capture(ff_client("ingest", "ingest", "cloudevent"), load_event("gcp_storage_finalized_binary.json"))
    resp = send_capture(ff_client("embed", "embed", "http"), load_event("gcp_scheduler_http.json"))
    assert resp.status_code == 200 and resp.get_json()["embedded"] == 20
    assert count(services, "SELECT count(*) FROM embeddings") == 20


def test_api_serves_the_core_routes_and_caps_the_body(entry_env: Settings, services: Services, model_dir: Any) -> None:
    client = ff_client("api", "api", "http")
    capture = load_event("gcp_http_search.json")
    capture["headers"]["X-Api-Key"] = TEST_API_KEY  # the capture carries a placeholder
    search = send_capture(client, capture)
    assert search.status_code == 200 and "results" in search.get_json()
    assert client.get("/health").get_json()["db"] == "ok"
    assert client.get("/nope").status_code == 404
    big = client.post("/search", data=b"x" * (1024 * 1024 + 1))
    assert big.status_code == 413 and b"xxx" not in big.data


def test_storage_deleted_cloudevent_removes_the_tracks_of_that_generation(
    uploaded: Settings, services: Services
) -> None:
    # GIVEN the sample object ingested through its finalized event
    client = ff_client("ingest", "ingest", "cloudevent")
    send_capture(client, load_event("gcp_storage_finalized_binary.json"))
    assert count(services, "SELECT count(*) FROM tracks") == 20
    # WHEN the object is deleted and its deleted event arrives, twice (at-least-once delivery)
    (uploaded.buckets_dir / BUCKET / KEY).unlink()
    first = send_capture(client, load_event("gcp_storage_deleted_binary.json"))
    second = send_capture(client, load_event("gcp_storage_deleted_binary.json"))
    # THEN both are acknowledged, the tracks are gone and nothing was dead-lettered
    assert (first.status_code, second.status_code) == (200, 200)
    assert count(services, "SELECT count(*) FROM tracks") == 0
    assert count(services, "SELECT count(*) FROM track_objects") == 0
    assert count(services, "SELECT count(*) FROM dead_jobs") == 0
    assert count(services, "SELECT attempts FROM ledger WHERE stage = 'deleted' AND subject LIKE 'object:%%'") == 2


def test_deleted_event_of_an_overwritten_generation_answers_500_until_the_new_one_is_ingested(
    uploaded: Settings, services: Services
) -> None:
    # GIVEN the sample generation ingested, and the bucket now holding another generation of the key
    client = ff_client("ingest", "ingest", "cloudevent")
    send_capture(client, load_event("gcp_storage_finalized_binary.json"))
    put_local(uploaded, BUCKET, KEY, sample_jsonl(5, tag="v2"))
    # WHEN the old generation's deleted event arrives before the new one's finalize
    resp = send_capture(client, load_event("gcp_storage_deleted_binary.json"))
    # THEN Eventarc is told to retry and nothing is removed meanwhile
    assert resp.status_code == 500
    assert count(services, "SELECT count(*) FROM tracks") == 20
    assert count(services, "SELECT count(*) FROM dead_jobs") == 0
