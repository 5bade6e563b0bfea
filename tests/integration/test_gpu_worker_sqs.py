"""The GPU worker on an SQS queue (moto server): ack right after the commit, poison to the DLQ at once."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.gpu_worker.__main__ import detect_queue
from infra.gpu_worker.worker import GpuWorker
from shared.config import Settings
from shared.errors import ConfigError
from shared.queue.base import NewJob
from shared.queue.sqs import SqsQueue
from shared.services import Services
from shared.vision.detector import Detector, ModelSpec
from tests.emulators import moto_url  # noqa: F401 - fixture
from tests.vision_fixtures import TINY_BOXES_PER_IMAGE, distinct_jpegs, metric_samples, tiny_model, upload


@pytest.fixture
def sqs(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:  # noqa: F811
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_url)
    client = boto3.session.Session().client("sqs", endpoint_url=moto_url, region_name="eu-west-1")
    name = f"contentfn-detect-{os.urandom(3).hex()}"
    dlq = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
    url = client.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    yield client, url, dlq


def test_worker_consumes_detection_jobs_from_sqs(
    services: Services, settings: Settings, sqs: tuple[Any, str, str], tmp_path: Path
) -> None:
    client, url, dlq = sqs
    # GIVEN 12 images recorded by ingest, whose jobs a cloud producer sent to SQS, plus one malformed message
    for i, data in enumerate(distinct_jpegs(12, seed=5)):
        upload(services, f"images/{i}.jpg", data)
    with services.db.connection() as conn:
        payloads = [r[0] for r in conn.execute("DELETE FROM jobs WHERE kind = 'detect' RETURNING payload")]
        conn.commit()
    queue = detect_queue(settings.model_copy(update={"gpu_queue": url}))
    assert isinstance(queue, SqsQueue)
    queue.enqueue_many([NewJob("detect", p, dedup_key=f"detect:{p['image_id']}") for p in payloads])
    queue.enqueue_many([NewJob("detect", {"nonsense": True})])
    # WHEN the worker runs on that queue
    worker = GpuWorker(services, Detector(ModelSpec(path=tiny_model(tmp_path / "t.onnx"))), queue=queue).start()
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            with services.db.connection() as conn:
                done = conn.execute("SELECT count(*) FROM images WHERE status = 'done'").fetchone()
                conn.commit()
            if done == (12,) and queue.depth("detect") == 0:
                break
            time.sleep(0.2)
    finally:
        worker.stop(grace_s=5)
    # THEN every image is detected once, SQS is empty, and the malformed message went to the DLQ at once
    with services.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM images WHERE status = 'done'").fetchone() == (12,)
        assert conn.execute("SELECT count(*) FROM detections").fetchone() == (12 * TINY_BOXES_PER_IMAGE,)
        conn.commit()
    assert queue.depth("detect") == 0
    dead = client.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]).get("Messages") or []
    assert len(dead) == 1 and "malformed" in dead[0]["MessageAttributes"]["error"]["StringValue"]
    assert metric_samples(worker.prometheus(), "contentfn_gpu_queue_depth") == [({}, 0.0)]


def test_gpu_queue_that_is_neither_sqs_nor_a_subscription_fails_at_start_naming_the_variable(
    settings: Settings,
) -> None:
    with pytest.raises(ConfigError, match="CONTENTFN_GPU_QUEUE: neither an SQS queue URL nor a Pub/Sub subscription"):
        detect_queue(settings.model_copy(update={"gpu_queue": "contentfn-dev-detect"}))
