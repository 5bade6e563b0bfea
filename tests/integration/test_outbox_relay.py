"""The outbox relay: jobs committed in Postgres reach the cloud queues (SQS on a moto server).

Pub/Sub has no emulator here; its publisher is exercised through the same ``relay_outbox`` with a
recording publisher standing at that boundary.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.errors import ConfigError
from shared.platform.runtime import load_entry_settings
from shared.queue.base import NewJob
from shared.queue.postgres import PgQueue
from shared.queue.relay import relay_outbox
from shared.services import Services
from tests.emulators import moto_url  # noqa: F401 - fixture
from tests.entry_fixtures import count, entry_env, lambda_context, put_local, sample_jsonl  # noqa: F401 - fixtures
from tests.event_files import load_event

BUCKET = "contentfn-dev-uploads"
KEY = "incoming/Beyoncé tracks 2024.jsonl"
REGION = "eu-west-1"


@pytest.fixture
def sqs(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("CONTENTFN_AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("CONTENTFN_AWS_REGION", REGION)
    return boto3.session.Session().client("sqs", endpoint_url=moto_url, region_name=REGION)


def _new_queue(sqs: Any, kind: str) -> str:
    return str(sqs.create_queue(QueueName=f"contentfn-{kind}-{os.urandom(3).hex()}")["QueueUrl"])


def _receive_all(sqs: Any, url: str, want: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        got.extend(out.get("Messages") or [])
    return got


def _as_lambda_sqs_event(messages: Sequence[dict[str, Any]], queue: str) -> dict[str, Any]:
    """What the SQS event source mapping hands Lambda for received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763805600456"},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:{queue}",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def test_ingest_on_aws_relays_its_jobs_to_sqs_and_the_embed_handler_consumes_them(
    entry_env: Settings,  # noqa: F811
    services: Services,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: LocalLambdaContext,  # noqa: F811
    model_dir: Any,
) -> None:
    from functions.embed.aws import handler as embed
    from functions.ingest.aws import handler as ingest

    # GIVEN the ingest function configured as Terraform does: it publishes embed and enrich jobs
    embed_url, enrich_url = _new_queue(sqs, "embed"), _new_queue(sqs, "enrich")
    monkeypatch.setenv("CONTENTFN_QUEUES", json.dumps({"embed": embed_url, "enrich": enrich_url}))
    put_local(entry_env, BUCKET, KEY, sample_jsonl(20))
    # WHEN an upload is ingested
    report = ingest(load_event("aws_s3_object_created.json"), lambda_context)["reports"][0]
    assert report["inserted"] == 20
    # THEN its jobs left the Postgres outbox and wait in the cloud queues, one message per job
    assert count(services, "SELECT count(*) FROM jobs") == 0
    embed_messages = _receive_all(sqs, embed_url, 20)
    assert len(embed_messages) == 20
    bodies = [json.loads(m["Body"]) for m in embed_messages]
    assert {b["kind"] for b in bodies} == {"embed"} and len({b["payload"]["track_id"] for b in bodies}) == 20
    assert len(_receive_all(sqs, enrich_url, 20)) == 20
    # AND the embed function, triggered by that queue, writes every vector
    out = embed(_as_lambda_sqs_event(embed_messages, embed_url.rsplit("/", 1)[1]), lambda_context)
    assert out == {"batchItemFailures": []}
    assert count(services, "SELECT count(*) FROM embeddings") == 20


def test_refused_publish_keeps_the_jobs_in_postgres_and_a_later_relay_sends_them(
    services: Services,
    sqs: Any,
    moto_url: str,  # noqa: F811
) -> None:
    from shared.queue.sqs import SqsQueue

    # GIVEN five embed jobs, and a queue URL whose queue does not exist (yet)
    queue = services.queue
    assert isinstance(queue, PgQueue)
    queue.enqueue_many([NewJob("embed", {"track_id": i}, dedup_key=f"embed:{i}") for i in range(5)])
    name = f"contentfn-embed-{os.urandom(3).hex()}"
    url = f"{moto_url}/123456789012/{name}"
    publisher = SqsQueue.create(url, kind="embed", endpoint_url=moto_url, region=REGION)
    # WHEN the relay runs THEN it reports the failure and the jobs stay, with no attempt used up
    report = relay_outbox(queue, {"embed": publisher}, budget_s=10)
    assert report.published == {} and "embed" in report.failed
    assert count(services, "SELECT count(*) FROM jobs WHERE attempts = 0 AND visible_at <= now()") == 5
    # WHEN the queue exists and the relay runs again THEN all five are sent once and leave Postgres
    sqs.create_queue(QueueName=name)
    assert relay_outbox(queue, {"embed": publisher}, budget_s=10).published == {"embed": 5}
    assert count(services, "SELECT count(*) FROM jobs") == 0
    assert len(_receive_all(sqs, url, 5)) == 5


class _Recording:
    """Stands where a Pub/Sub topic would (no emulator here): records what it is asked to publish."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.sent: list[NewJob] = []
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def enqueue_many(self, jobs: Sequence[NewJob]) -> int:
        time.sleep(self.delay_s)
        with self._lock:
            self.sent.extend(jobs)
        return len(jobs)


def test_two_relays_racing_send_each_job_once_and_leave_other_kinds_alone(services: Services) -> None:
    queue = services.queue
    assert isinstance(queue, PgQueue)
    queue.enqueue_many([NewJob("detect", {"image_id": i}, dedup_key=f"detect:{i}") for i in range(250)])
    queue.enqueue_many([NewJob("enrich", {"track_id": i}, dedup_key=f"enrich:{i}") for i in range(3)])
    topic = _Recording(delay_s=0.01)
    threads = [
        threading.Thread(target=relay_outbox, args=(queue, {"detect": topic}), kwargs={"budget_s": 30, "batch": 20})
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(j.payload["image_id"] for j in topic.sent) == list(range(250))
    assert {j.dedup_key for j in topic.sent} == {f"detect:{i}" for i in range(250)}
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'detect'") == 0
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'enrich'") == 3


def test_spent_budget_stops_the_relay_and_leaves_the_rest_waiting(services: Services) -> None:
    queue = services.queue
    assert isinstance(queue, PgQueue)
    queue.enqueue_many([NewJob("analyze", {"track_id": i}) for i in range(50)])
    report = relay_outbox(queue, {"analyze": _Recording()}, budget_s=0.0)
    assert report.out_of_time and report.total == 0
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'analyze' AND attempts = 0") == 50


def test_queue_targets_must_be_sqs_urls_or_pubsub_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENTFN_QUEUES", json.dumps({"detect": "projects/p/topics/contentfn-detect"}))
    assert load_entry_settings().queues == {"detect": "projects/p/topics/contentfn-detect"}
    monkeypatch.setenv("CONTENTFN_QUEUES", json.dumps({"embed": "contentfn-embed"}))
    with pytest.raises(ConfigError, match=r"CONTENTFN_QUEUES.*'embed'.*neither an SQS queue URL nor a Pub/Sub topic"):
        load_entry_settings()


def _image_event(key: str) -> dict[str, Any]:
    event = load_event("aws_s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = key
    return event


def test_image_admission_counts_what_waits_in_sqs_and_a_deferred_job_stays_in_postgres(
    entry_env: Settings,  # noqa: F811
    services: Services,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: LocalLambdaContext,  # noqa: F811
) -> None:
    from functions.ingest.aws import handler as ingest
    from tests.vision_fixtures import distinct_jpegs

    # GIVEN a detect queue relayed to SQS, a fleet that drains 4 images within the target latency
    detect_url = _new_queue(sqs, "detect")
    monkeypatch.setenv("CONTENTFN_QUEUES", json.dumps({"detect": detect_url}))
    for name, value in {
        "GPU_MAX_INSTANCES": "1",
        "GPU_MAX_BATCH": "2",
        "GPU_MAX_IN_FLIGHT": "1",
        "GPU_EXPECTED_IMG_PER_S": "1",
        "GPU_TARGET_LATENCY_S": "4",
    }.items():
        monkeypatch.setenv(f"CONTENTFN_{name}", value)
    first, second = distinct_jpegs(2, seed=3)
    # WHEN an image arrives while SQS is empty THEN it is admitted and relayed
    put_local(entry_env, BUCKET, "images/a.jpg", first)
    report = ingest(_image_event("images/a.jpg"), lambda_context)["reports"][0]
    assert report["admission"]["admit"] and report["admission"]["backlog"] == 0
    assert count(services, "SELECT count(*) FROM jobs") == 0
    # WHEN ten detection jobs already wait in SQS and another image arrives
    sqs.send_message_batch(
        QueueUrl=detect_url,
        Entries=[{"Id": str(i), "MessageBody": json.dumps({"kind": "detect", "payload": {}})} for i in range(10)],
    )
    put_local(entry_env, BUCKET, "images/b.jpg", second)
    report = ingest(_image_event("images/b.jpg"), lambda_context)["reports"][0]
    # THEN admission saw the SQS backlog and deferred the job, which waits in Postgres, not relayed yet
    gate = report["admission"]
    assert not gate["admit"] and gate["backlog"] >= 11 and gate["defer_s"] > 0
    assert count(services, "SELECT count(*) FROM jobs WHERE kind = 'detect' AND visible_at > now()") == 1
    attrs = sqs.get_queue_attributes(QueueUrl=detect_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(attrs["Attributes"]["ApproximateNumberOfMessages"]) == 11


def test_embed_batches_from_a_deep_sqs_queue_build_the_index_only_once_the_queue_drains(
    entry_env: Settings,  # noqa: F811
    services: Services,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: LocalLambdaContext,  # noqa: F811
    model_dir: Any,
) -> None:
    from functions.embed.aws import handler as embed
    from functions.ingest.aws import handler as ingest
    from shared.store.tracks import TrackStore

    # GIVEN 20 embed jobs relayed to SQS, and a deferral threshold of 10 waiting jobs
    embed_url = _new_queue(sqs, "embed")
    name = embed_url.rsplit("/", 1)[1]
    monkeypatch.setenv("CONTENTFN_QUEUES", json.dumps({"embed": embed_url}))
    monkeypatch.setenv("CONTENTFN_HNSW_DEFER_BACKLOG", "10")
    put_local(entry_env, BUCKET, KEY, sample_jsonl(20))
    ingest(load_event("aws_s3_object_created.json"), lambda_context)
    messages = _receive_all(sqs, embed_url, 20)
    assert len(messages) == 20

    def index_state() -> str:
        with services.db.connection() as conn:
            model = conn.execute("SELECT DISTINCT model FROM embeddings").fetchone()
            state = TrackStore(conn).hnsw_index_state(model[0]) if model else "no vectors"
            conn.commit()
        return state

    # WHEN a first batch of 5 is embedded while all 20 are still in the queue
    assert embed(_as_lambda_sqs_event(messages[:5], name), lambda_context) == {"batchItemFailures": []}
    # THEN its vectors are written and the index waits
    assert count(services, "SELECT count(*) FROM embeddings") == 5
    assert index_state() == "missing"
    # WHEN the event source mapping has deleted every message and the last batch is embedded
    for start in range(0, 20, 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages[start : start + 10])
        ]
        sqs.delete_message_batch(QueueUrl=embed_url, Entries=entries)
    assert embed(_as_lambda_sqs_event(messages[5:], name), lambda_context) == {"batchItemFailures": []}
    # THEN every vector is written and the HNSW index is built
    assert count(services, "SELECT count(*) FROM embeddings") == 20
    assert index_state() == "valid"
