"""Lambda handlers invoked with ``events/`` payloads and a Lambda context, on a real Postgres."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.services import Services
from tests.entry_fixtures import TEST_API_KEY, count, put_local, sample_jsonl
from tests.event_files import load_event

BUCKET = "contentfn-dev-uploads"
KEY = "incoming/Beyoncé tracks 2024.jsonl"


@pytest.fixture
def uploaded(entry_env: Settings) -> Settings:
    put_local(entry_env, BUCKET, KEY, sample_jsonl(20))
    return entry_env


def _garbage_record(template: dict[str, Any], message_id: str) -> dict[str, Any]:
    record = json.loads(json.dumps(template))
    record["messageId"] = message_id
    record["body"] = "this is not an S3 notification"
    return record


def test_s3_notification_ingests_the_url_encoded_key(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
) -> None:
    from functions.ingest.aws import handler

    out = handler(load_event("aws_s3_object_created.json"), lambda_context)
    assert out["reports"][0]["status"] == "ok" and out["reports"][0]["inserted"] == 20
    assert count(services, "SELECT count(*) FROM tracks") == 20


def test_sqs_batch_with_one_poison_record_reports_exactly_that_record(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
) -> None:
    from functions.ingest.aws import handler

    # GIVEN a batch of one good S3-in-SQS record and one record that is not an S3 notification
    event = load_event("aws_sqs_s3_notification.json")
    event["Records"].append(_garbage_record(event["Records"][0], "poison-1"))
    # WHEN the handler runs
    out = handler(event, lambda_context)
    # THEN only the poison record is reported, the good one is ingested, the poison is dead-lettered
    assert out == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    assert count(services, "SELECT count(*) FROM tracks") == 20
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'ingest' AND job_id IS NULL") == 1
    # AND its redelivery (SQS retries until the redrive moves it) adds no second dead-letter row
    assert handler(event, lambda_context) == out
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'ingest'") == 1


def test_eventbridge_object_created_ingests_once_with_the_s3_routes(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
) -> None:
    from functions.ingest.aws import handler

    first = handler(load_event("aws_eventbridge_s3_object_created.json"), lambda_context)["reports"][0]
    again = handler(load_event("aws_s3_object_created.json"), lambda_context)["reports"][0]
    assert first["inserted"] == 20 and again["replayed"]  # same object version: one effect
    assert not first["replayed"]


def test_async_invoke_with_a_foreign_event_is_dead_lettered_and_acknowledged(
    entry_env: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
) -> None:
    from functions.ingest.aws import handler

    out = handler(load_event("aws_eventbridge_scheduled_event.json"), lambda_context)
    assert out["status"] == "dead_lettered"
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'ingest'") == 1


def test_missing_object_is_rejected_by_the_core_and_not_retried(
    entry_env: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
) -> None:
    from functions.ingest.aws import handler

    out = handler(load_event("aws_sqs_s3_notification.json"), lambda_context)
    assert out == {"batchItemFailures": []}
    assert count(services, "SELECT count(*) FROM ledger WHERE status = 'rejected'") == 1
    # the refused event is kept in the dead-letter store; it never was a queued job
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'ingest' AND job_id IS NULL") == 1


def test_transient_failure_of_one_record_is_reported_and_the_other_record_is_kept(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import functions.ingest.aws as ingest_aws
    from shared.errors import TransientError

    real = ingest_aws.handle_object_created

    def flaky(event: Any, svc: Any) -> Any:
        if event.key.endswith("other.jsonl"):
            raise TransientError("database restarting")
        return real(event, svc)

    monkeypatch.setattr(ingest_aws, "handle_object_created", flaky)
    event = load_event("aws_sqs_s3_notification.json")
    second = json.loads(json.dumps(event["Records"][0]))
    body = json.loads(second["body"])
    body["Records"][0]["s3"]["object"]["key"] = "incoming/other.jsonl"
    second.update(messageId="second", body=json.dumps(body))
    event["Records"].append(second)
    out = ingest_aws.handler(event, lambda_context)
    assert out == {"batchItemFailures": [{"itemIdentifier": "second"}]}
    assert count(services, "SELECT count(*) FROM tracks") == 20
    assert count(services, "SELECT count(*) FROM dead_jobs") == 0  # transient: retried, not dead


def _tracks(services: Services, n: int) -> list[tuple[int, str]]:
    with services.db.connection() as conn:
        rows = conn.execute("SELECT id, content_hash FROM tracks ORDER BY id LIMIT %s", (n,)).fetchall()
        conn.commit()
    return [(int(r[0]), str(r[1])) for r in rows]


def test_embed_batch_with_one_poison_job_reports_exactly_that_record(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
    model_dir: Any,
) -> None:
    from functions.embed.aws import handler as embed
    from functions.ingest.aws import handler as ingest

    ingest(load_event("aws_s3_object_created.json"), lambda_context)
    # GIVEN the real-format batch, two records pointing at real tracks, one lacking a track id
    event = load_event("aws_sqs_jobs.json")
    for record, (track_id, chash) in zip(event["Records"][:2], _tracks(services, 2), strict=True):
        record["body"] = json.dumps({"kind": "embed", "payload": {"track_id": track_id, "content_hash": chash}})
    poison_id = event["Records"][2]["messageId"]
    event["Records"][2]["body"] = json.dumps({"kind": "embed", "payload": {"content_hash": "x"}})
    # WHEN the embed handler runs THEN exactly the poison record is reported
    assert embed(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": poison_id}]}
    assert count(services, "SELECT count(*) FROM embeddings") == 2
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'embed'") == 1
    # AND a redelivery of the whole batch writes nothing twice
    assert embed(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": poison_id}]}
    assert count(services, "SELECT count(*) FROM embeddings") == 2
    assert count(services, "SELECT count(*) FROM dead_jobs WHERE kind = 'embed'") == 1


def test_embed_schedule_tick_drains_the_postgres_outbox(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
    model_dir: Any,
) -> None:
    from functions.embed.aws import handler as embed
    from functions.ingest.aws import handler as ingest

    ingest(load_event("aws_s3_object_created.json"), lambda_context)
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'embed'") == 20
    totals = embed(load_event("aws_eventbridge_scheduler.json"), lambda_context)
    assert totals["embedded"] == 20
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'embed'") == 0
    assert count(services, "SELECT count(*) FROM embeddings") == 20


@pytest.mark.parametrize("name", ["aws_apigw_v2_search.json", "aws_function_url_health.json"])
def test_api_answers_http_api_and_function_url_requests_like_the_core(
    entry_env: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
    model_dir: Any,
    name: str,
) -> None:
    from functions.api.aws import handler

    event = load_event(name)
    event["headers"]["x-api-key"] = TEST_API_KEY  # the search needs it; the health check ignores it
    out = handler(event, lambda_context)
    assert out["statusCode"] == 200, out
    assert out["headers"]["Content-Type"] == "application/json"
    assert out["headers"]["cache-control"] == "no-store"
    body = json.loads(out["body"])
    assert "results" in body if "search" in name else body["db"] == "ok"


def test_api_unknown_path_wrong_method_and_oversized_body_get_the_core_errors(
    entry_env: Settings,
    lambda_context: LocalLambdaContext,
) -> None:
    from functions.api.aws import handler

    event = load_event("aws_function_url_health.json")
    event["rawPath"] = "/nope"
    missing = handler(event, lambda_context)
    assert missing["statusCode"] == 404 and json.loads(missing["body"])["code"] == "not_found"
    assert missing["headers"]["Content-Type"] == "application/problem+json"
    event = load_event("aws_function_url_health.json")
    event["requestContext"]["http"]["method"] = "POST"
    wrong = handler(event, lambda_context)
    assert wrong["statusCode"] == 405 and wrong["headers"]["allow"] == "GET, HEAD"
    event = load_event("aws_function_url_health.json")
    event["body"] = "x" * (1024 * 1024 + 1)
    big = handler(event, lambda_context)
    assert big["statusCode"] == 413 and "xxxx" not in big["body"]
    assert json.loads(big["body"])["status"] == 413


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/health/", 200, None),
        ("HEAD", "/health", 200, None),
        ("OPTIONS", "/health", 405, "method_not_allowed"),
        ("TRACE", "/stats", 405, "method_not_allowed"),
        ("GET", "/tracks/not-a-number", 404, "not_found"),
    ],
)
def test_api_resolver_hands_every_method_and_path_to_the_core(
    entry_env: Settings,
    lambda_context: LocalLambdaContext,
    method: str,
    path: str,
    status: int,
    code: str | None,
) -> None:
    from functions.api.aws import handler

    # GIVEN requests the core matches its own way (trailing slash, HEAD as GET, 405 naming the methods)
    event = load_event("aws_function_url_health.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    # WHEN the Lambda handler answers them
    out = handler(event, lambda_context)
    # THEN the answer is the core's, whatever the resolver would have said
    assert out["statusCode"] == status, out
    if method == "HEAD":
        assert out["body"] == ""
    elif code is not None:
        assert json.loads(out["body"])["code"] == code
    else:
        assert json.loads(out["body"])["db"] == "ok"


def test_api_requires_the_key_when_one_is_configured(
    entry_env: Settings,
    lambda_context: LocalLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions.api.aws import handler, runtime

    runtime.close()
    secret = "another-key-of-at-least-32-characters"
    monkeypatch.setenv("CONTENTFN_API_KEY", secret)
    event = load_event("aws_apigw_v2_search.json")
    denied = handler(event, lambda_context)
    assert denied["statusCode"] == 401
    event["rawPath"], event["rawQueryString"] = "/stats", ""
    event["headers"]["x-api-key"] = secret
    assert handler(event, lambda_context)["statusCode"] == 200


def test_logs_are_json_with_a_correlation_id_and_metrics_are_emf(uploaded: Settings) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.entry_fixtures import entry_environment

    # A fresh process, as Lambda runs it: Powertools writes JSON logs and EMF metrics to stdout.
    event = load_event("aws_sqs_s3_notification.json")
    cmd = [sys.executable, "-m", "local.invoke", "--fn", "ingest", "--event", "events/aws_sqs_s3_notification.json"]
    env = {**os.environ, **entry_environment(uploaded), "POWERTOOLS_LOG_LEVEL": "INFO"}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    docs = [json.loads(line) for line in out.splitlines() if line.startswith('{"')]
    logs = [d for d in docs if "level" in d]
    assert any(
        d.get("correlation_id") == event["Records"][0]["messageId"] and d.get("service") == "contentfn-ingest"
        for d in logs
    ), logs
    emf = [d for d in docs if "_aws" in d]
    assert emf and emf[-1]["ObjectsIngested"] == [1.0]
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "contentfn"


def test_failed_index_build_after_an_embed_batch_does_not_retry_its_jobs(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
    model_dir: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions.embed.aws import handler as embed
    from functions.embed.index import IndexKeeper
    from functions.ingest.aws import handler as ingest

    def broken_build(self: IndexKeeper) -> Any:
        raise RuntimeError("could not resize shared memory segment")

    monkeypatch.setattr(IndexKeeper, "_build", broken_build)
    ingest(load_event("aws_s3_object_created.json"), lambda_context)
    event = load_event("aws_sqs_jobs.json")
    for record, (track_id, chash) in zip(event["Records"], _tracks(services, 3), strict=True):
        record["body"] = json.dumps({"kind": "embed", "payload": {"track_id": track_id, "content_hash": chash}})
    # WHEN the batch is embedded and the index build that follows fails
    out = embed(event, lambda_context)
    # THEN every record is reported done and its vector kept; search stays on the exact scan
    assert out == {"batchItemFailures": []}
    assert count(services, "SELECT count(*) FROM embeddings") == 3


@pytest.mark.parametrize("module", ["functions.ingest.aws", "functions.embed.aws", "functions.enrich.aws"])
def test_the_product_modules_log_as_powertools_json_on_lambda(module: str) -> None:
    import importlib
    import logging

    # GIVEN a Lambda entry module imported (cold start)
    entry = importlib.import_module(module)
    importlib.reload(entry)  # another entry imported earlier in this process configured the loggers too
    handler = entry.logger.registered_handler
    # WHEN one of the core's own loggers (deep under functions/ or shared/) emits a record
    record = logging.getLogger("shared.queue.relay").makeRecord(
        "shared.queue.relay", logging.WARNING, __file__, 1, "relay to the cloud queues failed", None, None
    )
    # THEN it goes through the function's Powertools handler as one JSON line naming the service
    assert handler in logging.getLogger("shared").handlers and handler in logging.getLogger("functions").handlers
    line = json.loads(handler.formatter.format(record))
    assert line["service"] == entry.logger.service and line["message"] == "relay to the cloud queues failed"


def test_s3_object_removed_notification_removes_the_keys_tracks(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
) -> None:
    from functions.ingest.aws import handler

    # GIVEN the sample object ingested through its S3 notification
    handler(load_event("aws_s3_object_created.json"), lambda_context)
    assert count(services, "SELECT count(*) FROM tracks") == 20
    # WHEN the key is deleted (a delete marker: every version of the key is gone)
    out = handler(load_event("aws_s3_object_removed.json"), lambda_context)
    # THEN the report says what went and the tracks are gone
    assert out["reports"][0]["tracks"] == 20 and out["reports"][0]["links"] == 20
    assert count(services, "SELECT count(*) FROM tracks") == 0


def test_eventbridge_permanent_deletion_of_another_version_keeps_the_tracks(
    uploaded: Settings,
    services: Services,
    lambda_context: LocalLambdaContext,
) -> None:
    from functions.ingest.aws import handler

    handler(load_event("aws_s3_object_created.json"), lambda_context)
    # GIVEN the key gone from the bucket, and first an older version of it, never ingested, deleted for good
    (uploaded.buckets_dir / BUCKET / KEY).unlink()
    event = load_event("aws_eventbridge_s3_object_deleted.json")
    event["detail"]["object"]["version-id"] = "an-older-version"
    out = handler(event, lambda_context)
    # THEN nothing this version did not feed is touched
    assert out["reports"][0]["tracks"] == 0
    assert count(services, "SELECT count(*) FROM tracks") == 20
    # AND the deletion of the ingested version removes them
    handler(load_event("aws_eventbridge_s3_object_deleted.json"), lambda_context)
    assert count(services, "SELECT count(*) FROM tracks") == 0
