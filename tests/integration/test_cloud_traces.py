"""One trace per upload through the cloud adapters: the S3 notification or GCS CloudEvent, the jobs
relayed to SQS (moto server) or Pub/Sub (at its client boundary, pushed to functions-framework
targets and pulled by the GPU worker), each embed / enrich / analyze function, the LLM call and the
detection batch — one trace per object, parent links intact across every queue hop."""

from __future__ import annotations

import base64
import json
import os
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from google.pubsub_v1 import types as gapic_types

from infra.gpu_worker.worker import GpuWorker
from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.observability.traces import configure_tracing
from shared.queue.postgres import PgQueue
from shared.queue.pubsub import PubSubPublisher, PubSubPullQueue
from shared.queue.relay import relay_outbox
from shared.queue.sqs import SqsQueue
from shared.services import Services
from shared.vision.detector import Detector, ModelSpec
from tests.emulators import moto_url  # noqa: F401 - fixture
from tests.entry_fixtures import entry_env, ff_client, lambda_context, put_local, sample_jsonl, send_capture  # noqa: F401
from tests.event_files import load_event
from tests.intel_fixtures import llm_server  # noqa: F401 - fixture
from tests.servers.llm_server import LlmServer
from tests.servers.otlp_receiver import OtlpReceiver
from tests.sqs_event_source import receive_event, settle
from tests.trace_fixtures import UploadTrace, otlp_receiver, upload_trace, wait_for_spans  # noqa: F401
from tests.vision_fixtures import distinct_jpegs, tiny_model

BUCKET = "contentfn-dev-uploads"
KEY = "incoming/Beyoncé tracks 2024.jsonl"
PHOTO = "images/photo.jpg"
REGION = "eu-west-1"
TRACKS = 4


@pytest.fixture
def traced_env(
    entry_env: Settings,  # noqa: F811
    otlp_receiver: OtlpReceiver,  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """Entry points that export every trace to the receiver and always ask the LLM."""
    for name, value in {
        "CONTENTFN_OTEL_EXPORTER_ENDPOINT": otlp_receiver.endpoint,
        "CONTENTFN_OTEL_SAMPLE_RATIO": "1",
        "CONTENTFN_LLM_BASE_URL": llm_server.url,
        "CONTENTFN_LLM_API_KEY": llm_server.api_key,
        "CONTENTFN_ANALYSIS_MIN_CONFIDENCE": "1",
        "CONTENTFN_HTTP_ALLOW_NETWORKS": '["127.0.0.1/32"]',
    }.items():
        monkeypatch.setenv(name, value)
    put_local(entry_env, BUCKET, KEY, sample_jsonl(TRACKS, tag="cloud"))
    return entry_env


def run_detection(services: Services, queue: Any, tmp_path: Path, receiver: OtlpReceiver) -> None:
    """The GPU service's pipeline on ``queue`` until one detection batch reached the receiver."""
    # As `python -m infra.gpu_worker` does at start.
    configure_tracing("contentfn-gpu-worker", receiver.endpoint, sample_ratio=1.0)
    worker = GpuWorker(services, Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx"))), queue=queue).start()
    try:
        assert wait_for_spans(receiver, "detect batch", 1, timeout_s=60)
    finally:
        worker.stop(grace_s=5)


def assert_one_trace_per_upload(receiver: OtlpReceiver) -> None:
    assert len(wait_for_spans(receiver, "analyze job", TRACKS)) >= TRACKS
    tracks: UploadTrace = upload_trace(receiver, KEY)
    assert len(tracks.named("enrich job")) == TRACKS
    assert {tracks.parent_of(s).span_id for s in tracks.named("enrich job")} == {tracks.root.span_id}
    assert tracks.named("embed batch")  # one batch per push on GCP, one per SQS batch on AWS
    assert {tracks.parent_of(s).span_id for s in tracks.named("embed batch")} == {tracks.root.span_id}
    assert len(tracks.named("analyze job")) == TRACKS
    assert {tracks.parent_of(s).name for s in tracks.named("analyze job")} == {"enrich job"}
    assert {tracks.parent_of(s).name for s in tracks.named("llm chat completion")} == {"analyze job"}
    assert len(tracks.named("llm chat completion")) == TRACKS
    photo = upload_trace(receiver, PHOTO)
    (batch,) = photo.named("detect batch")
    assert photo.parent_of(batch).span_id == photo.root.span_id
    assert batch.service == "contentfn-gpu-worker" and photo.root.trace_id != tracks.root.trace_id


# -- AWS: Lambda handlers, SQS on a moto server ---------------------------------------------------


@pytest.fixture
def sqs(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("CONTENTFN_AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("CONTENTFN_AWS_REGION", REGION)
    return boto3.session.Session().client("sqs", endpoint_url=moto_url, region_name=REGION)


def _drain_sqs(sqs: Any, url: str, handler: Any, context: LocalLambdaContext) -> int:
    """What the SQS event source mapping does until the queue is empty; returns the records handled."""
    handled = 0
    for _ in range(50):
        event = receive_event(sqs, url, wait_s=0)
        if not event["Records"]:
            return handled
        response = handler(event, context)
        assert response == {"batchItemFailures": []}
        settle(sqs, url, event, response)
        handled += len(event["Records"])
    return handled


def test_one_upload_is_one_trace_through_the_aws_handlers_and_sqs(
    traced_env: Settings,
    services: Services,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: LocalLambdaContext,  # noqa: F811
    otlp_receiver: OtlpReceiver,  # noqa: F811
    model_dir: Any,
    tmp_path: Path,
    moto_url: str,  # noqa: F811
) -> None:
    from functions.analyze.aws import handler as analyze
    from functions.embed.aws import handler as embed
    from functions.enrich.aws import handler as enrich
    from functions.ingest.aws import handler as ingest

    # GIVEN every job kind published to its own SQS queue, as Terraform wires the functions
    urls = {
        k: str(sqs.create_queue(QueueName=f"contentfn-{k}-{os.urandom(3).hex()}")["QueueUrl"])
        for k in ("embed", "enrich", "analyze", "detect")
    }
    monkeypatch.setenv("CONTENTFN_QUEUES", json.dumps(urls))
    photo = next(iter(distinct_jpegs(1, seed=11)))
    put_local(traced_env, BUCKET, PHOTO, photo)
    # WHEN S3 notifies ingest of a track file and of a photo
    ingest(load_event("aws_s3_object_created.json"), lambda_context)
    event = load_event("aws_s3_object_created.json")
    event["Records"][0]["s3"]["object"].update({"key": PHOTO, "size": len(photo)})
    ingest(event, lambda_context)
    # AND each function consumes its queue (enrich relays the analyze jobs it queues)
    assert _drain_sqs(sqs, urls["embed"], embed, lambda_context) == TRACKS
    assert _drain_sqs(sqs, urls["enrich"], enrich, lambda_context) == TRACKS
    assert _drain_sqs(sqs, urls["analyze"], analyze, lambda_context) == TRACKS
    # AND the GPU service takes the photo's job from its SQS queue
    queue = SqsQueue.create(urls["detect"], kind="detect", endpoint_url=moto_url, region=REGION)
    run_detection(services, queue, tmp_path, otlp_receiver)
    # THEN each upload is one trace, every hop parented on the span that queued it
    assert_one_trace_per_upload(otlp_receiver)


# -- GCP: functions-framework targets, Pub/Sub at its client boundary -----------------------------


class PubSubBoundary:
    """Stands where the Pub/Sub service would: records what ``PublisherClient.publish`` is given
    and delivers it as a push request (functions-framework) or a pull response (the GPU worker)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.pulled: list[dict[str, Any]] = []

    # PublisherClient
    def publish(self, topic: str, data: bytes, ordering_key: str = "", **attrs: str) -> Future[str]:
        self.published.append((topic, data, attrs))
        future: Future[str] = Future()
        future.set_result(str(len(self.published)))
        return future

    def resume_publish(self, topic: str, ordering_key: str) -> None:
        raise AssertionError("no publish failed")

    def take(self, topic: str) -> list[tuple[bytes, dict[str, str]]]:
        mine = [(d, a) for t, d, a in self.published if t == topic]
        self.published = [p for p in self.published if p[0] != topic]
        return mine

    # SubscriberClient (unary pull)
    def pull(self, request: dict[str, Any], timeout: float) -> Any:
        topic = request["subscription"].replace("/subscriptions/", "/topics/")
        received = [
            gapic_types.ReceivedMessage(
                ack_id=f"ack-{i}", message=gapic_types.PubsubMessage(data=d, attributes=a, message_id=f"m{i}")
            )
            for i, (d, a) in enumerate(self.take(topic))
        ]
        return gapic_types.PullResponse(received_messages=received)

    def acknowledge(self, request: dict[str, Any]) -> None:
        self.pulled.append(request)

    def modify_ack_deadline(self, request: dict[str, Any]) -> None:
        pass


def _topic(kind: str) -> str:
    return f"projects/contentfn-dev/topics/contentfn-{kind}"


def _relay(services: Services, boundary: PubSubBoundary) -> None:
    """What the producing function's runtime does after it answers (CONTENTFN_QUEUES → topics)."""
    assert isinstance(services.queue, PgQueue)
    publishers = {k: PubSubPublisher(boundary, _topic(k)) for k in ("embed", "enrich", "analyze", "detect")}
    relay_outbox(services.queue, publishers, budget_s=10)


def _push(boundary: PubSubBoundary, kind: str) -> int:
    """Push each message of ``kind``'s topic to its function, as a push subscription does."""
    client = ff_client(kind, kind, "http")
    messages = boundary.take(_topic(kind))
    for i, (data, attrs) in enumerate(messages):
        assert attrs["traceparent"].startswith("00-")  # the context travels as a message attribute
        doc = load_event("gcp_pubsub_push_job.json")
        doc["body"]["message"].update(
            {"data": base64.b64encode(data).decode(), "attributes": attrs, "messageId": f"{kind}-{i}"}
        )
        assert send_capture(client, doc).status_code == 204
    return len(messages)


def test_one_upload_is_one_trace_through_the_gcp_targets_and_pubsub(
    traced_env: Settings,
    services: Services,
    otlp_receiver: OtlpReceiver,  # noqa: F811
    model_dir: Any,
    tmp_path: Path,
) -> None:
    boundary = PubSubBoundary()
    photo = next(iter(distinct_jpegs(1, seed=12)))
    put_local(traced_env, BUCKET, PHOTO, photo)
    # WHEN Eventarc delivers the finalize events of a track file and of a photo to ingest
    ingest = ff_client("ingest", "ingest", "cloudevent")
    assert send_capture(ingest, load_event("gcp_storage_finalized_binary.json")).status_code == 200
    doc = load_event("gcp_storage_finalized_binary.json")
    doc["body"].update({"name": PHOTO, "size": str(len(photo)), "generation": "1763805600999999"})
    doc["headers"]["Ce-Subject"] = f"objects/{PHOTO}"
    assert send_capture(ingest, doc).status_code == 200
    # AND the jobs are published to Pub/Sub and pushed to each function in turn
    _relay(services, boundary)
    assert _push(boundary, "embed") == TRACKS
    assert _push(boundary, "enrich") == TRACKS
    _relay(services, boundary)
    assert _push(boundary, "analyze") == TRACKS
    # AND the GPU service pulls the photo's job from its subscription
    subscription = _topic("detect").replace("/topics/", "/subscriptions/")
    run_detection(services, PubSubPullQueue(boundary, subscription, kind="detect"), tmp_path, otlp_receiver)
    # THEN each upload is one trace, every hop parented on the span that queued it
    assert_one_trace_per_upload(otlp_receiver)
    assert boundary.pulled  # the worker acknowledged the photo's job
