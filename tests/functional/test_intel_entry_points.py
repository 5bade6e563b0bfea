"""scrape, enrich and analyze entry points (Lambda handlers and functions-framework functions) with
``events/`` payloads, on a real Postgres: acks, partial batch failures, dead letters, schedules."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.models import TrackIn
from shared.services import Services
from shared.store.tracks import upsert_tracks
from tests.conftest import REPO
from tests.entry_fixtures import count, ff_client, send_capture
from tests.event_files import load_event
from tests.intel_fixtures import sample_rows

MODULES = [f"functions.{fn}.{cloud}" for fn in ("scrape", "enrich", "analyze") for cloud in ("aws", "gcp")]


@pytest.fixture
def aws_env(entry_env: Settings) -> Iterator[Settings]:
    """Entry env, and the AWS runtimes of these functions reset before and after."""
    import functions.analyze.aws
    import functions.enrich.aws
    import functions.scrape.aws

    runtimes = [functions.analyze.aws.runtime, functions.enrich.aws.runtime, functions.scrape.aws.runtime]
    for r in runtimes:
        r.close()
    yield entry_env
    for r in runtimes:
        r.close()


def load_tracks(services: Services, n: int) -> list[int]:
    rows = [
        TrackIn(artist=r["artist"], title=r["title"], lyrics=r["lyrics"], source_id=r["id"]) for r in sample_rows(n)
    ]
    with services.db.connection() as conn:
        result = upsert_tracks(conn, rows)
        conn.commit()
    return sorted(c.id for c in result.content_changed)


def sqs_jobs(kind: str, track_ids: list[int | str]) -> dict[str, Any]:
    event = load_event("aws_sqs_jobs.json")
    template = event["Records"][0]
    records = []
    for i, tid in enumerate(track_ids):
        record = json.loads(json.dumps(template))
        record["messageId"] = f"m{i}"
        record["body"] = json.dumps({"kind": kind, "payload": {"track_id": tid}, "dedup_key": f"{kind}:{tid}"})
        records.append(record)
    event["Records"] = records
    return event


def test_analyze_sqs_batch_reports_only_the_jobs_that_cannot_succeed(
    aws_env: Settings, services: Services, lambda_context: LocalLambdaContext
) -> None:
    from functions.analyze.aws import handler

    ids = load_tracks(services, 2)
    event = sqs_jobs("analyze", [ids[0], ids[1], 987654, "not-a-number"])
    event["Records"].append({**event["Records"][0], "messageId": "garbage", "body": "not a job"})
    out = handler(event, lambda_context)
    assert sorted(f["itemIdentifier"] for f in out["batchItemFailures"]) == ["garbage", "m2", "m3"]
    assert count(services, "SELECT count(*) FROM analyses") == 2  # no LLM configured: rule-based
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'analyze'") == 3


def test_enrich_on_a_schedule_drains_the_outbox(
    aws_env: Settings, services: Services, lambda_context: LocalLambdaContext
) -> None:
    from functions.enrich.aws import handler
    from functions.enrich.core import enrich_job

    ids = load_tracks(services, 3)
    services.queue.enqueue_many([enrich_job(t, "h") for t in ids])
    out = handler(load_event("aws_eventbridge_scheduler.json"), lambda_context)
    assert out["done"] == 3
    assert count(services, "SELECT count(*) FROM enrichments WHERE kind = 'features'") == 3
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'analyze'") == 3


def test_scrape_runs_once_per_tick_and_dead_letters_other_events(
    aws_env: Settings, services: Services, lambda_context: LocalLambdaContext
) -> None:
    from functions.scrape.aws import handler

    tick = load_event("aws_eventbridge_scheduler.json")
    assert handler(tick, lambda_context)["status"] == "ok"
    assert handler(tick, lambda_context)["replayed"] is True
    assert handler(load_event("aws_s3_object_created.json"), lambda_context)["status"] == "dead_lettered"
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'scrape'") == 1


def push_capture(kind: str, track_id: object) -> dict[str, Any]:
    doc = load_event("gcp_pubsub_push_job.json")
    data = {"kind": kind, "payload": {"track_id": track_id}}
    doc["body"]["message"]["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    doc["body"]["message"]["attributes"] = {"kind": kind}
    return doc


def test_analyze_pubsub_push_acks_done_and_poison_jobs(entry_env: Settings, services: Services) -> None:
    ids = load_tracks(services, 1)
    client = ff_client("analyze", "analyze", "http")
    assert send_capture(client, push_capture("analyze", ids[0])).status_code == 204
    assert count(services, "SELECT count(*) FROM analyses") == 1
    assert send_capture(client, push_capture("analyze", 424242)).status_code == 204  # poison: acked, dead-lettered
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'analyze'") == 1


def test_enrich_pubsub_push_of_the_wrong_kind_is_dead_lettered(entry_env: Settings, services: Services) -> None:
    client = ff_client("enrich", "enrich", "http")
    assert send_capture(client, push_capture("analyze", 1)).status_code == 204
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'enrich'") == 1


def test_scrape_cloud_scheduler_request(entry_env: Settings, services: Services) -> None:
    client = ff_client("scrape", "scrape", "http")
    response = send_capture(client, load_event("gcp_scheduler_http.json"))
    assert response.status_code == 200 and response.get_json()["status"] == "ok"
    assert count(services, "SELECT count(*) FROM idempotency WHERE key LIKE 'tick:scrape:%%'") == 1


@pytest.mark.parametrize("module", MODULES)
def test_entry_module_imports_no_sdk_of_the_other_cloud_and_builds_nothing(module: str) -> None:
    cloud = module.rsplit(".", 1)[-1]
    banned = ["boto3", "onnxruntime", "torch", "pgserver", "starlette", "uvicorn", "redis"] + (
        ["functions_framework", "flask"] if cloud == "aws" else ["aws_lambda_powertools"]
    )
    code = (
        f"import sys, json; import {module} as m; assert m.runtime._services is None;"
        f" print(json.dumps([x for x in {banned!r} if x in sys.modules]))"
    )
    env = {"PATH": "/usr/bin:/bin", "CONTENTFN_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
