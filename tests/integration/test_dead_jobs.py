"""The dead-letter store over real PostgreSQL: listed, replayed once fixed, purged; through the API
(served over HTTP), the CLI, and a cloud queue (SQS on moto server) for the relay after a replay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from click.testing import CliRunner

from functions.api.core import Api
from local.cli import main
from local.server import ApiServer
from shared.events import Job
from shared.platform.runtime import record_poison
from shared.queue.dead import replay_dead
from shared.queue.kinds import embed_job, enrich_job
from shared.services import Services
from tests.emulators import moto_url  # noqa: F401


def _dead_by_poison(services: Services, kind: str, payload: dict[str, Any], dedup: str, error: str) -> int:
    """A job queued in Postgres, claimed, and failed as poison: what a worker does with bad input."""
    assert services.queue.enqueue(kind, payload, dedup_key=dedup)
    (claimed,) = services.queue.claim(kind, 1)
    assert services.queue.fail(claimed, error, retryable=False) == "dead"
    with services.db.connection() as conn:
        row = conn.execute("SELECT id FROM dead_jobs WHERE job_id = %s", (int(claimed.id),)).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def _jobs(services: Services) -> list[tuple[str, dict[str, Any], str | None, int]]:
    with services.db.connection() as conn:
        rows = conn.execute("SELECT kind, payload, dedup_key, attempts FROM jobs ORDER BY id").fetchall()
        conn.commit()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _dead_ids(services: Services) -> list[int]:
    with services.db.connection() as conn:
        rows = conn.execute("SELECT id FROM dead_jobs ORDER BY id").fetchall()
        conn.commit()
    return [int(r[0]) for r in rows]


@pytest.fixture
def api(services: Services) -> Iterator[str]:
    srv = ApiServer(Api(services), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


def test_a_poison_job_is_listed_with_its_error_then_replayed_with_fresh_attempts(services: Services, api: str) -> None:
    job = embed_job(7, "h7")
    dead_id = _dead_by_poison(services, job.kind, job.payload, job.dedup_key or "", "model file unreadable")
    # GIVEN a job that failed for good: listed newest first, its error and job shown
    listed = httpx.get(f"{api}/dead-jobs").json()
    assert listed["total"] == 1 and listed["next_cursor"] is None
    (row,) = listed["items"]
    assert (row["id"], row["kind"], row["last_error"], row["replayable"]) == (
        dead_id,
        "embed",
        "model file unreadable",
        True,
    )
    detail = httpx.get(f"{api}/dead-jobs/{dead_id}").json()["dead_job"]
    assert detail["payload"] == job.payload and detail["dedup_key"] == job.dedup_key
    assert _jobs(services) == []
    # WHEN it is replayed by id (the cause fixed)
    replay = httpx.post(f"{api}/dead-jobs/replay", json={"ids": [dead_id]})
    assert replay.status_code == 200, replay.text
    assert replay.json() == {"replayed": [dead_id], "already_queued": [], "not_replayable": {}, "kinds": {"embed": 1}}
    # THEN the same job is queued again with no attempts used, and the dead row is gone
    assert _jobs(services) == [("embed", job.payload, job.dedup_key, 0)]
    assert _dead_ids(services) == []
    (claimed,) = services.queue.claim("embed", 1)
    assert claimed.job.payload == job.payload
    # AND replaying it again finds nothing: never queued twice
    again = httpx.post(f"{api}/dead-jobs/replay", json={"ids": [dead_id]}).json()
    assert again["replayed"] == [] and str(dead_id) in again["not_replayable"]
    assert len(_jobs(services)) == 1


def test_a_job_dead_lettered_by_a_cloud_delivery_replays_the_job_it_carried(services: Services) -> None:
    job = enrich_job(3, "h3")
    # What a function fed by SQS or Pub/Sub records for poison: the delivered job, inside its envelope.
    delivered = Job(id="msg-1", kind=job.kind, payload=job.payload, attempts=2, dedup_key=job.dedup_key)
    assert record_poison(
        services.db,
        kind="enrich",
        envelope=delivered.model_dump(mode="json"),
        error="bad",
        dedup_key="enrich:aws:msg-1",
    )
    with services.db.connection() as conn:
        report = replay_dead(conn, kind="enrich", max_attempts=5)
        conn.commit()
    assert report.kinds == {"enrich": 1}
    assert _jobs(services) == [("enrich", job.payload, job.dedup_key, 0)]


def test_an_event_record_is_not_replayable_and_stays_while_the_jobs_around_it_replay(
    services: Services, api: str
) -> None:
    services.queue.dead_letter("ingest", {"bucket": "uploads", "key": "bad.csv"}, "row 1: not UTF-8", dedup_key="obj-1")
    job = embed_job(9, "h9")
    dead_job_id = _dead_by_poison(services, job.kind, job.payload, job.dedup_key or "", "boom")
    event_id = next(i for i in _dead_ids(services) if i != dead_job_id)
    rows = {r["id"]: r for r in httpx.get(f"{api}/dead-jobs").json()["items"]}
    assert rows[event_id]["replayable"] is False and rows[dead_job_id]["replayable"] is True
    report = httpx.post(f"{api}/dead-jobs/replay", json={"ids": [event_id, dead_job_id]}).json()
    assert report["replayed"] == [dead_job_id]
    assert "upload the object again" in report["not_replayable"][str(event_id)]
    assert _dead_ids(services) == [event_id]  # the event is kept for its owner to see
    assert [j[0] for j in _jobs(services)] == ["embed"]


def test_a_replay_whose_job_is_already_queued_removes_the_dead_row_without_a_second_job(services: Services) -> None:
    job = embed_job(4, "h4")
    dead_id = _dead_by_poison(services, job.kind, job.payload, job.dedup_key or "", "transient, then out of attempts")
    assert services.queue.enqueue(job.kind, job.payload, dedup_key=job.dedup_key)  # queued again by a new upload
    with services.db.connection() as conn:
        report = replay_dead(conn, ids=[dead_id], max_attempts=5)
        conn.commit()
    assert report.already_queued == [dead_id] and report.replayed == []
    assert len(_jobs(services)) == 1 and _dead_ids(services) == []


def test_two_replays_at_once_queue_each_job_once(services: Services, database_url: str) -> None:
    ids = [_dead_by_poison(services, "analyze", {"track_id": i}, f"analyze:{i}:h", "x") for i in range(3)]
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        held = replay_dead(first, ids=ids, max_attempts=5)  # not committed yet: its rows stay locked
        other = replay_dead(second, ids=ids, max_attempts=5)
        second.commit()
        first.commit()
    assert sorted(held.replayed) == ids
    assert other.replayed == [] and sorted(int(k) for k in other.not_replayable) == ids
    assert len(_jobs(services)) == 3


def test_replay_by_kind_takes_the_oldest_up_to_the_limit_and_only_that_kind(services: Services, api: str) -> None:
    # An unreadable delivery recorded by the embed function, older than the jobs: it holds no job,
    # so it neither fills the limit nor is reported for a kind selection.
    assert record_poison(services.db, kind="embed", envelope=b"not json", error="unreadable", dedup_key="embed:aws:m0")
    (unreadable,) = _dead_ids(services)
    embeds = [
        _dead_by_poison(services, "embed", {"track_id": i, "content_hash": "h"}, f"embed:{i}:h", "x") for i in range(3)
    ]
    other = _dead_by_poison(services, "analyze", {"track_id": 1}, "analyze:1:h", "x")
    listed = httpx.get(f"{api}/dead-jobs", params={"kind": "embed"}).json()
    assert listed["total"] == 4 and [r["id"] for r in listed["items"]] == [*reversed(embeds), unreadable]
    report = httpx.post(f"{api}/dead-jobs/replay", json={"kind": "embed", "limit": 2}).json()
    assert report["replayed"] == embeds[:2] and report["not_replayable"] == {}
    assert _dead_ids(services) == [unreadable, embeds[2], other]


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"content-type": "text/plain"}, "{}", 415, "unsupported_media_type"),
        ({"content-type": "application/json"}, "{}", 400, "invalid_body"),
        ({"content-type": "application/json"}, '{"kind": "ingest"}', 400, "invalid_body"),
        ({"content-type": "application/json"}, '{"ids": ["x"]}', 400, "invalid_body"),
        ({"content-type": "application/json"}, json.dumps({"ids": list(range(1, 1002))}), 400, "invalid_body"),
        ({"content-type": "application/json"}, json.dumps({"ids": [2**63]}), 400, "invalid_body"),
        ({"content-type": "application/json"}, json.dumps({"ids": [1], "kind": "embed"}), 400, "invalid_body"),
        ({"content-type": "application/json"}, json.dumps({"kind": "embed", "pad": "x" * 40_000}), 413, "too_large"),
    ],
)
def test_a_malformed_replay_request_is_refused_naming_the_problem(
    api: str, headers: dict[str, str], body: str, status: int, code: str
) -> None:
    response = httpx.post(f"{api}/dead-jobs/replay", content=body, headers=headers)
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_deleting_a_dead_job_forgets_it(services: Services, api: str) -> None:
    dead_id = _dead_by_poison(services, "embed", {"track_id": 1, "content_hash": "h"}, "embed:1:h", "x")
    assert httpx.delete(f"{api}/dead-jobs/{dead_id}").json() == {"deleted": dead_id}
    assert httpx.get(f"{api}/dead-jobs/{dead_id}").status_code == 404
    assert httpx.delete(f"{api}/dead-jobs/{dead_id}").status_code == 404


def test_the_cli_lists_replays_to_the_cloud_queue_at_once_and_purges(
    services: Services,
    database_url: str,
    tmp_path: Any,
    moto_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="contentfn-dead-replay-embed")["QueueUrl"]
    job = embed_job(11, "h11")
    replayed = _dead_by_poison(services, job.kind, job.payload, job.dedup_key or "", "index missing")
    old = _dead_by_poison(services, "analyze", {"track_id": 2}, "analyze:2:h", "x")
    env = {
        "CONTENTFN_DATABASE_URL": database_url,
        "CONTENTFN_DATA_DIR": str(tmp_path),
        "CONTENTFN_QUEUES": json.dumps({"embed": queue_url}),
        "CONTENTFN_AWS_ENDPOINT_URL": moto_url,
        "CONTENTFN_AWS_REGION": "us-east-1",
    }
    runner = CliRunner()
    listed = runner.invoke(main, ["dead", "list"], env=env)
    assert listed.exit_code == 0 and "index missing" in listed.output, listed.output
    # WHEN replayed from a shell whose environment names the cloud queues
    result = runner.invoke(main, ["dead", "replay", str(replayed)], env=env)
    assert result.exit_code == 0, result.output
    assert "replayed 1" in result.output and "relayed 1 embed" in result.output
    # THEN the job is in the embed queue now, and no longer waits in Postgres
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1 and json.loads(messages[0]["Body"])["payload"] == job.payload
    assert _jobs(services) == []
    # AND an unknown id is reported with a non-zero exit; purge by kind forgets the rest
    missing = runner.invoke(main, ["dead", "replay", "999999"], env=env)
    assert missing.exit_code == 1 and "999999: no such dead job" in missing.output
    purged = runner.invoke(main, ["dead", "purge", "--kind", "analyze"], env=env)
    assert purged.exit_code == 0 and "purged 1" in purged.output
    assert old not in _dead_ids(services) and _dead_ids(services) == []


def test_without_the_api_key_nothing_is_listed_or_replayed(services: Services) -> None:
    from shared.config import load_settings
    from shared.events import HttpRequest

    dead_id = _dead_by_poison(services, "embed", {"track_id": 5, "content_hash": "h"}, "embed:5:h", "x")
    settings = load_settings(**{**services.settings.model_dump(), "api_key": "s3cret-key"})
    api = Api(Services(settings, services.db, services.queue, services.blob, services.cache))
    body = json.dumps({"ids": [dead_id]}).encode()
    json_type = {"content-type": "application/json"}
    assert api.handle(HttpRequest.from_parts("GET", "/dead-jobs")).status == 401
    assert api.handle(HttpRequest.from_parts("POST", "/dead-jobs/replay", "", json_type, body)).status == 401
    assert _dead_ids(services) == [dead_id] and _jobs(services) == []
    authorized = {**json_type, "x-api-key": "s3cret-key"}
    assert api.handle(HttpRequest.from_parts("POST", "/dead-jobs/replay", "", authorized, body)).status == 200
    assert _dead_ids(services) == []


def test_the_openapi_document_describes_each_json_body_from_its_model(services: Services) -> None:
    from shared.events import HttpRequest

    doc = json.loads(Api(services).handle(HttpRequest.from_parts("GET", "/openapi.json")).body)

    def body_schema(path: str) -> dict[str, Any]:
        # bodies are listed once under components, like answers, and referenced from the operation
        ref = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]

    replay = body_schema("/dead-jobs/replay")
    assert set(replay["properties"]) == {"ids", "kind", "limit"}
    assert replay["properties"]["ids"]["maxItems"] == 1000 and replay["additionalProperties"] is False
    stream = body_schema("/streams")
    assert stream["required"] == ["url"]
    assert "requestBody" in doc["paths"]["/analyze"]["post"] and "413" in doc["paths"]["/analyze"]["post"]["responses"]
    assert "requestBody" not in doc["paths"]["/dead-jobs"]["get"]
