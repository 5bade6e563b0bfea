"""Pub/Sub adapter at the client boundary (no emulator can be had): what is handed to the SDK's
publisher, and how the SDK's own ``Message`` objects are acked, nacked and dead-lettered."""

from __future__ import annotations

import json
import queue
from concurrent.futures import Future
from typing import Any

import pytest
from google.cloud.pubsub_v1.subscriber._protocol import requests as sub_requests
from google.cloud.pubsub_v1.subscriber.message import Message
from google.pubsub_v1 import types as gapic_types

from shared.queue.base import ClaimedJob, NewJob
from shared.queue.errors import PublishFailed
from shared.queue.pubsub import PubSubPublisher, PubSubPuller

TOPIC = "projects/contentfn-test/topics/detect"
SUBSCRIPTION = "projects/contentfn-test/subscriptions/detect-gpu"


class FakePublisher:
    """Records PublisherClient.publish calls; fails the ones asked to."""

    def __init__(self, fail_keys: set[str] | None = None) -> None:
        self.published: list[dict[str, Any]] = []
        self.resumed: list[tuple[str, str]] = []
        self._fail = fail_keys or set()

    def publish(self, topic: str, data: bytes, ordering_key: str = "", **attrs: str) -> Future[str]:
        self.published.append({"topic": topic, "data": data, "ordering_key": ordering_key, "attrs": attrs})
        future: Future[str] = Future()
        if ordering_key in self._fail:
            future.set_exception(RuntimeError("unavailable"))
        else:
            future.set_result(str(len(self.published)))
        return future

    def resume_publish(self, topic: str, ordering_key: str) -> None:
        self.resumed.append((topic, ordering_key))


def _message(data: bytes, request_queue: queue.Queue[Any], *, attempt: int = 1, **attrs: str) -> Message:
    pb = gapic_types.PubsubMessage(data=data, attributes=attrs, message_id=f"m{attempt}", ordering_key="stream-7")
    return Message(gapic_types.PubsubMessage.pb(pb), f"ack-{attempt}", attempt, request_queue)


class FakeSubscriber:
    """SubscriberClient.subscribe that delivers the given messages synchronously."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.flow_control: Any = None

    def subscribe(self, subscription: str, callback: Any, flow_control: Any = ()) -> str:
        self.flow_control = flow_control
        for m in self.messages:
            callback(m)
        return "streaming-pull-future"


def test_publish_sends_the_job_body_with_kind_dedup_key_and_ordering_key() -> None:
    fake = FakePublisher()
    pub = PubSubPublisher(fake, TOPIC, ordering_key=lambda j: f"stream-{j.payload['stream_id']}")
    assert pub.enqueue_many([NewJob("detect", {"stream_id": 7, "frame": 1}, dedup_key="detect:7:1")]) == 1
    sent = fake.published[0]
    assert sent["topic"] == TOPIC and sent["ordering_key"] == "stream-7"
    assert sent["attrs"] == {"kind": "detect", "dedup_key": "detect:7:1"}
    assert json.loads(sent["data"]) == {
        "kind": "detect",
        "payload": {"stream_id": 7, "frame": 1},
        "dedup_key": "detect:7:1",
    }


def test_failed_ordered_publish_resumes_its_key_and_raises_publish_failed() -> None:
    fake = FakePublisher(fail_keys={"stream-2"})
    pub = PubSubPublisher(fake, TOPIC, ordering_key=lambda j: f"stream-{j.payload['stream_id']}")
    with pytest.raises(PublishFailed, match="1 of 3"):
        pub.enqueue_many([NewJob("detect", {"stream_id": i}) for i in (1, 2, 3)])
    assert fake.resumed == [(TOPIC, "stream-2")]


def test_streaming_pull_bounds_in_flight_and_acks_through_the_sdk_message() -> None:
    requests: queue.Queue[Any] = queue.Queue()
    body = json.dumps({"kind": "detect", "payload": {"image_id": 3}}).encode()
    fake = FakeSubscriber([_message(body, requests, attempt=2, dedup_key="detect:3")])
    puller = PubSubPuller(fake, SUBSCRIPTION, max_in_flight=4)
    got: list[ClaimedJob] = []
    assert puller.stream(got.append) == "streaming-pull-future"
    assert fake.flow_control.max_messages == 4
    job = got[0].job
    assert (job.kind, job.payload, job.attempts, job.dedup_key) == ("detect", {"image_id": 3}, 2, "detect:3")
    assert puller.ack(got) == 1
    assert isinstance(requests.get_nowait(), sub_requests.AckRequest)


def test_retryable_failure_nacks_so_the_subscription_retry_policy_spaces_redelivery() -> None:
    requests: queue.Queue[Any] = queue.Queue()
    fake = FakeSubscriber([_message(b'{"kind":"detect","payload":{}}', requests)])
    got: list[ClaimedJob] = []
    PubSubPuller(fake, SUBSCRIPTION).stream(got.append)
    assert PubSubPuller(fake, SUBSCRIPTION).fail(got[0], "gpu busy", retryable=True) == "retry"
    assert isinstance(requests.get_nowait(), sub_requests.NackRequest)


def test_malformed_message_is_copied_to_the_dead_letter_topic_with_its_error_and_acked() -> None:
    requests: queue.Queue[Any] = queue.Queue()
    dead = FakePublisher()
    fake = FakeSubscriber([_message(b"not json", requests, source="camera")])
    handled: list[ClaimedJob] = []
    puller = PubSubPuller(fake, SUBSCRIPTION, dead_letter=PubSubPublisher(dead, TOPIC + "-dead"))
    puller.stream(handled.append)
    assert handled == []
    assert dead.published[0]["data"] == b"not json"
    assert dead.published[0]["attrs"]["source"] == "camera" and "not JSON" in dead.published[0]["attrs"]["error"]
    assert isinstance(requests.get_nowait(), sub_requests.AckRequest)
