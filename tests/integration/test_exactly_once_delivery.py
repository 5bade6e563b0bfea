"""At-least-once in, exactly-once effects out: redelivery, concurrent duplicates and crashes
between the write and the acknowledgement, over real HTTP, real processes, real Postgres."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.errors import IdempotencyInProgress
from shared.services import Services
from tests import emulators
from tests.conftest import REPO
from tests.entry_fixtures import FunctionsFrameworkServer, count, entry_environment, put_local, sample_jsonl
from tests.event_files import load_event
from tests.sqs_event_source import receive_event, settle

moto_url = emulators.moto_url

BUCKET = "contentfn-dev-uploads"
KEY = "incoming/Beyoncé tracks 2024.jsonl"


def effects(services: Services) -> dict[str, int]:
    """Everything one ingest of the file may write, counted in the database."""
    return {
        "tracks": count(services, "SELECT count(*) FROM tracks"),
        "jobs": count(services, "SELECT count(*) FROM jobs WHERE kind = 'embed'"),
        "ledger": count(services, "SELECT count(*) FROM ledger WHERE stage = 'ingested'"),
        "idempotency_done": count(services, "SELECT count(*) FROM idempotency WHERE status = 'done'"),
        "dead": count(services, "SELECT count(*) FROM dead_jobs"),
    }


def one_effect(rows: int) -> dict[str, int]:
    return {"tracks": rows, "jobs": rows, "ledger": 1, "idempotency_done": 1, "dead": 0}


@pytest.fixture
def ingest_server(settings: Settings, tmp_path: Path) -> Any:
    server = FunctionsFrameworkServer(
        "ingest", "ingest", "cloudevent", entry_environment(settings), tmp_path / "ff-ingest.log"
    ).wait_ready()
    yield server
    server.stop()


def test_same_cloudevent_delivered_three_times_over_http_has_one_effect(
    settings: Settings, services: Services, ingest_server: FunctionsFrameworkServer
) -> None:
    put_local(settings, BUCKET, KEY, sample_jsonl(50))
    statuses = [ingest_server.send(load_event("gcp_storage_finalized_binary.json")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert effects(services) == one_effect(50)


def test_two_concurrent_deliveries_over_http_have_one_effect(
    settings: Settings, services: Services, ingest_server: FunctionsFrameworkServer
) -> None:
    # GIVEN a file large enough that both deliveries overlap
    put_local(settings, BUCKET, KEY, sample_jsonl(3000))
    doc = load_event("gcp_storage_finalized_binary.json")
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        statuses.append(ingest_server.send(doc).status_code)

    # WHEN two real threads deliver the same event at once
    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # THEN one runs; the other is told to retry (500 → Eventarc retries) or replays the result
    assert sorted(statuses) in ([200, 200], [200, 500]), statuses
    # AND the platform's retry of a 500 is answered from the idempotency record
    assert ingest_server.send(doc).status_code == 200
    assert effects(services) == one_effect(3000)


def test_two_concurrent_lambda_invocations_have_one_effect(
    settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.ingest.aws as ingest_aws

    for name, value in entry_environment(settings).items():
        monkeypatch.setenv(name, value)
    ingest_aws.runtime.close()
    put_local(settings, BUCKET, KEY, sample_jsonl(3000))
    event = load_event("aws_s3_object_created.json")
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def invoke() -> None:
        barrier.wait()
        try:
            out = ingest_aws.handler(event, LocalLambdaContext())
            outcomes.append("replayed" if out["reports"][0]["replayed"] else "ran")
        except IdempotencyInProgress:
            outcomes.append("retry")  # Lambda retries an asynchronous invoke that raised

    try:
        threads = [threading.Thread(target=invoke) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert outcomes.count("ran") == 1 and len(outcomes) == 2, outcomes
        assert effects(services) == one_effect(3000)
    finally:
        ingest_aws.runtime.close()


def test_pubsub_push_delivered_three_times_over_http_embeds_once(
    settings: Settings, services: Services, model_dir: Path, tmp_path: Path
) -> None:
    from functions.ingest.core import handle_object_created
    from shared.events import ObjectCreated

    put_local(settings, settings.bucket, "t.jsonl", sample_jsonl(3))
    handle_object_created(ObjectCreated(bucket=settings.bucket, key="t.jsonl", generation="1"), services)
    with services.db.connection() as conn:
        track_id, chash = conn.execute("SELECT id, content_hash FROM tracks ORDER BY id LIMIT 1").fetchone()  # type: ignore[misc]
        conn.commit()
    doc = load_event("gcp_pubsub_push_job.json")
    job = {"kind": "embed", "payload": {"track_id": track_id, "content_hash": chash}}
    doc["body"]["message"]["data"] = base64.b64encode(json.dumps(job).encode()).decode()
    server = FunctionsFrameworkServer(
        "embed", "embed", "http", entry_environment(settings), tmp_path / "ff-embed.log"
    ).wait_ready()
    try:
        statuses = [server.send(doc).status_code for _ in range(3)]
    finally:
        server.stop()
    assert statuses == [204, 204, 204]
    assert count(services, "SELECT count(*) FROM embeddings") == 1
    assert count(services, "SELECT count(*) FROM ledger WHERE stage = 'embedded'") == 1


# -- crashes between the write and the acknowledgement ------------------------------------------

_CRASH_AFTER_HANDLER = """
import os, boto3
from functions.ingest.aws import handler
from local.lambda_context import LocalLambdaContext
from tests.sqs_event_source import receive_event
sqs = boto3.session.Session(region_name="eu-west-1").client("sqs", endpoint_url=os.environ["MOTO_URL"])
event = receive_event(sqs, os.environ["QUEUE_URL"])
assert event["Records"], "no message"
print(handler(event, LocalLambdaContext()), flush=True)
os._exit(137)  # killed after the handler's write, before the event source mapping deletes the message
"""

_CRASH_INSIDE_EFFECT = """
import os, sys
import functions.ingest.core as core
from functions.ingest.aws import handler
from local.lambda_context import LocalLambdaContext
from tests.event_files import load_event

class _Crash:
    def info(self, *a, **k):  # logged right after the ingest transaction commits
        sys.stdout.flush()
        os._exit(137)
    def __getattr__(self, name):
        return getattr(core.logging.getLogger("x"), name)

core.log = _Crash()
handler(load_event("aws_s3_object_created.json"), LocalLambdaContext())
"""


def _wait_until_expired(services: Services, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while count(services, "SELECT count(*) FROM idempotency WHERE expires_at > now()") and time.monotonic() < deadline:
        time.sleep(0.1)


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_crash_after_the_write_before_the_sqs_delete_then_redelivery_has_one_effect(
    settings: Settings, services: Services, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    import functions.ingest.aws as ingest_aws

    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "eu-west-1"}
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    sqs = boto3.session.Session(region_name="eu-west-1").client("sqs", endpoint_url=moto_url)
    url = sqs.create_queue(QueueName=f"crash-{os.urandom(3).hex()}", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    put_local(settings, BUCKET, KEY, sample_jsonl(40))
    sqs.send_message(QueueUrl=url, MessageBody=load_event("aws_sqs_s3_notification.json")["Records"][0]["body"])
    env = entry_environment(settings) | aws | {"MOTO_URL": moto_url, "QUEUE_URL": url}
    # GIVEN a function process killed after its write and before the message was deleted
    crashed = _run(_CRASH_AFTER_HANDLER, env)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    assert effects(services) == one_effect(40)
    # WHEN SQS redelivers the message after its visibility timeout
    time.sleep(1.2)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ingest_aws.runtime.close()
    try:
        event = receive_event(sqs, url, wait_s=2)
        assert event["Records"] and event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
        response = ingest_aws.handler(event, LocalLambdaContext())
        settle(sqs, url, event, response)
    finally:
        ingest_aws.runtime.close()
    # THEN it is acknowledged, and the database holds the effect of exactly one delivery
    assert response == {"batchItemFailures": []}
    assert (
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )
    assert effects(services) == one_effect(40)


def test_crash_right_after_the_commit_leaves_a_done_record_that_the_retry_replays(
    settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.ingest.aws as ingest_aws

    put_local(settings, BUCKET, KEY, sample_jsonl(40))
    env = entry_environment(settings, CONTENTFN_IDEMPOTENCY_TTL_S="5")
    # GIVEN a process killed right after the ingest transaction committed
    crashed = _run(_CRASH_INSIDE_EFFECT, env)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    assert count(services, "SELECT count(*) FROM tracks") == 40
    # THEN "done" committed with the rows (written in the effect's transaction): nothing is left in progress
    assert count(services, "SELECT count(*) FROM idempotency WHERE status = 'in_progress'") == 0
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ingest_aws.runtime.close()
    try:
        # WHEN redelivered at once THEN it is answered from the record, with no wait for an expiry
        report = ingest_aws.handler(load_event("aws_s3_object_created.json"), LocalLambdaContext())["reports"][0]
    finally:
        ingest_aws.runtime.close()
    assert report["replayed"] is True and report["inserted"] == 40
    assert effects(services) == one_effect(40)


_CRASH_BEFORE_COMMIT = """
import os, sys, boto3
import functions.ingest.core as core
from functions.ingest.aws import handler
from local.lambda_context import LocalLambdaContext
from tests.sqs_event_source import receive_event

class _Crash:
    def record(self, *a, **k):  # the ledger row is written inside the ingest transaction, before its commit
        os._exit(137)

core.ledger = _Crash()
sqs = boto3.session.Session(region_name="eu-west-1").client("sqs", endpoint_url=os.environ["MOTO_URL"])
event = receive_event(sqs, os.environ["QUEUE_URL"])
assert event["Records"], "no message"
handler(event, LocalLambdaContext())
"""


def test_crash_mid_ingest_is_redelivered_by_sqs_and_ingested_once_not_refused_by_a_stale_claim(
    settings: Settings, services: Services, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    import functions.ingest.aws as ingest_aws

    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "eu-west-1"}
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    sqs = boto3.session.Session(region_name="eu-west-1").client("sqs", endpoint_url=moto_url)
    # S3 → SQS → Lambda: the queue's visibility outlives the function timeout and the claim (2 s and
    # 4 s here; Terraform makes it 6 times the timeout)
    url = sqs.create_queue(QueueName=f"mid-{os.urandom(3).hex()}", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    put_local(settings, BUCKET, KEY, sample_jsonl(40))
    sqs.send_message(QueueUrl=url, MessageBody=load_event("aws_sqs_s3_notification.json")["Records"][0]["body"])
    # No idempotency lifetime configured: the claim's lifetime comes from the function timeout alone
    env = entry_environment(settings, CONTENTFN_FUNCTION_TIMEOUT_S="2") | aws | {"MOTO_URL": moto_url, "QUEUE_URL": url}
    # GIVEN a function process killed in the middle of its ingest transaction
    crashed = _run(_CRASH_BEFORE_COMMIT, env)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    assert count(services, "SELECT count(*) FROM tracks") == 0
    assert count(services, "SELECT count(*) FROM idempotency WHERE status = 'in_progress'") == 1
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ingest_aws.runtime.close()
    try:
        # WHEN SQS redelivers the message once its visibility has passed
        event = receive_event(sqs, url, wait_s=10)
        assert event["Records"] and event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
        response = ingest_aws.handler(event, LocalLambdaContext())
        settle(sqs, url, event, response)
    finally:
        ingest_aws.runtime.close()
    # THEN the retry is not refused by the dead delivery's claim: acknowledged, and ingested once
    assert response == {"batchItemFailures": []}
    assert effects(services) == one_effect(40)
