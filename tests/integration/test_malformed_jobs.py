"""Every job kind, given a malformed payload, is dead-lettered at once with the field named, on the
real paths: the Postgres queue and its consumers, and a cloud delivery (an SQS batch to the Lambda
handler for the track kinds; the GPU worker on an SQS queue on moto server for ``detect``).

Parametrized over the registry of payload models (``shared.queue.kinds.PAYLOADS``): a kind added to
it without a consumer below fails here, and so does a kind a consumer claims without a model
(``tests/unit/test_job_kinds.py``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.models import TrackIn
from shared.queue.kinds import ANALYZE_JOB, DETECT_JOB, EMBED_JOB, ENRICH_JOB, PAYLOADS
from shared.services import Services
from shared.store.tracks import upsert_tracks
from tests.emulators import moto_url  # noqa: F401 - fixture
from tests.entry_fixtures import entry_env, lambda_context  # noqa: F401 - fixtures
from tests.event_files import load_event

HUGE = "y" * 50_000


def malformed(kind: str) -> tuple[dict[str, Any], str]:
    """A payload whose first required field holds a huge object instead of its value, and that field."""
    model = PAYLOADS[kind]
    field = next(name for name, info in model.model_fields.items() if info.is_required())
    return {field: {"value": HUGE}}, field


def assert_names_the_field(error: str, kind: str, field: str) -> None:
    assert f"malformed {kind} job payload: {field}: Input should be a valid" in error, error
    assert HUGE[:100] not in error and len(error) < 500


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def dead_rows(services: Services, kind: str) -> list[tuple[Any, ...]]:
    with services.db.connection() as conn:
        rows = conn.execute(
            "SELECT job_id IS NOT NULL, last_error, retryable, attempts FROM dead_jobs WHERE kind = %s", (kind,)
        ).fetchall()
        conn.commit()
    return [tuple(r) for r in rows]


def run_gpu_worker(services: Services, tmp_path: Path, queue: Any, done: Callable[[], bool]) -> None:
    from infra.gpu_worker.worker import GpuWorker
    from shared.vision.detector import Detector, ModelSpec
    from tests.vision_fixtures import tiny_model

    detector = Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx")))
    worker = GpuWorker(services, detector, queue=queue).start()
    try:
        wait_until(done)
    finally:
        worker.stop(grace_s=5)


# -- the Postgres queue: what the local workers (and the cloud outbox drains) run ----------------------


def _pg_track_consumer(kind: str) -> Callable[[Services, Path], None]:
    def consume(services: Services, _: Path) -> None:
        from functions.analyze.core import run_analyze_batch
        from functions.embed.core import run_embed_batch
        from functions.enrich.core import run_enrich_batch

        run = {EMBED_JOB: run_embed_batch, ENRICH_JOB: run_enrich_batch, ANALYZE_JOB: run_analyze_batch}[kind]
        assert run(services).claimed == 1

    return consume


def _pg_detect_consumer(services: Services, tmp_path: Path) -> None:
    run_gpu_worker(services, tmp_path, None, lambda: bool(dead_rows(services, DETECT_JOB)))


PG_CONSUMERS: dict[str, Callable[[Services, Path], None]] = {
    EMBED_JOB: _pg_track_consumer(EMBED_JOB),
    ENRICH_JOB: _pg_track_consumer(ENRICH_JOB),
    ANALYZE_JOB: _pg_track_consumer(ANALYZE_JOB),
    DETECT_JOB: _pg_detect_consumer,
}


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_a_malformed_job_on_the_postgres_queue_is_dead_lettered_at_once_naming_the_field(
    kind: str, services: Services, model_dir: Path, tmp_path: Path
) -> None:
    assert kind in PG_CONSUMERS, f"no Postgres queue consumer is tested for job kind {kind!r}"
    payload, field = malformed(kind)
    # GIVEN a malformed job of this kind queued in Postgres
    assert services.queue.enqueue(kind, payload, dedup_key=f"{kind}:malformed")
    # WHEN its consumer claims it
    PG_CONSUMERS[kind](services, tmp_path)
    # THEN it is dead at its first attempt, not retried, with the field named and the value not echoed
    ((from_queue, error, retryable, attempts),) = dead_rows(services, kind)
    assert from_queue and retryable is False and attempts == 1
    assert_names_the_field(error, kind, field)
    assert services.queue.depth(kind) == 0


# -- a cloud delivery -------------------------------------------------------------------------------


def _sqs_batch(kind: str, payload: dict[str, Any], services: Services) -> dict[str, Any]:
    """The malformed job beside a good one (a batch that fails whole is retried whole by Lambda)."""
    with services.db.connection() as conn:
        (track,) = upsert_tracks(
            conn, [TrackIn(artist="Ada", title="Counting", lyrics="one two three")]
        ).content_changed
        conn.commit()
    event = load_event("aws_sqs_jobs.json")
    event["Records"] = event["Records"][:2]
    good = PAYLOADS[kind](track_id=track.id, content_hash=track.content_hash).to_job()
    for record, mid, job in zip(
        event["Records"],
        ("malformed-1", "good-1"),
        ({"kind": kind, "payload": payload, "dedup_key": f"{kind}:malformed"}, good.__dict__),
        strict=True,
    ):
        record["messageId"], record["body"] = mid, json.dumps(job)
    return event


def _lambda_consumer(kind: str) -> Callable[[pytest.FixtureRequest, dict[str, Any]], str]:
    def consume(request: pytest.FixtureRequest, payload: dict[str, Any]) -> str:
        import importlib

        request.getfixturevalue("entry_env")
        services: Services = request.getfixturevalue("services")
        handler = importlib.import_module(f"functions.{kind}.aws").handler
        out = handler(_sqs_batch(kind, payload, services), request.getfixturevalue("lambda_context"))
        # Only that record is reported failed (SQS's own redrive keeps the raw message too).
        assert out == {"batchItemFailures": [{"itemIdentifier": "malformed-1"}]}
        ((from_queue, error, retryable, _),) = dead_rows(services, kind)
        assert not from_queue and retryable is False  # recorded from the delivery, with the job inside
        return str(error)

    return consume


@pytest.fixture
def sqs_detect_queue(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:
    import boto3

    endpoint = request.getfixturevalue("moto_url")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_SQS": endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.session.Session().client("sqs", endpoint_url=endpoint, region_name="eu-west-1")
    name = f"contentfn-detect-{os.urandom(3).hex()}"
    dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
    url = client.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    yield client, url, dlq


def _gpu_worker_on_sqs(request: pytest.FixtureRequest, payload: dict[str, Any]) -> str:
    from infra.gpu_worker.wiring import detect_queue
    from shared.queue.base import NewJob

    client, url, dlq = request.getfixturevalue("sqs_detect_queue")
    services: Services = request.getfixturevalue("services")
    settings: Settings = request.getfixturevalue("settings")
    queue = detect_queue(settings.model_copy(update={"gpu_queue": url}))
    assert queue is not None  # a queue URL names an SQS queue, never the Postgres table
    queue.enqueue_many([NewJob(DETECT_JOB, payload, dedup_key="detect:malformed")])
    found: list[dict[str, Any]] = []

    def dead_lettered() -> bool:
        found.extend(client.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]).get("Messages") or [])
        return bool(found)

    run_gpu_worker(services, request.getfixturevalue("tmp_path"), queue, dead_lettered)
    assert queue.depth(DETECT_JOB) == 0  # moved to the DLQ at once, not left to be received again
    # The GPU worker's cloud dead letter is the queue's DLQ, the error in a message attribute.
    return str(found[0]["MessageAttributes"]["error"]["StringValue"])


CLOUD_CONSUMERS: dict[str, Callable[[pytest.FixtureRequest, dict[str, Any]], str]] = {
    EMBED_JOB: _lambda_consumer(EMBED_JOB),
    ENRICH_JOB: _lambda_consumer(ENRICH_JOB),
    ANALYZE_JOB: _lambda_consumer(ANALYZE_JOB),
    DETECT_JOB: _gpu_worker_on_sqs,
}


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_a_malformed_job_delivered_by_a_cloud_queue_is_dead_lettered_naming_the_field(
    kind: str, request: pytest.FixtureRequest, model_dir: Path
) -> None:
    assert kind in CLOUD_CONSUMERS, f"no cloud delivery is tested for job kind {kind!r}"
    payload, field = malformed(kind)
    # GIVEN a malformed job of this kind delivered by the cloud queue WHEN its consumer runs
    error = CLOUD_CONSUMERS[kind](request, payload)
    # THEN it is dead-lettered with the field named and the value not echoed
    assert_names_the_field(error, kind, field)
