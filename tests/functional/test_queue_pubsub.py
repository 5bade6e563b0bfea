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


# -- synchronous pull (the GPU worker's claim loop) -----------------------------------------------


class FakePullSubscriber:
    """SubscriberClient's unary pull/acknowledge/modify_ack_deadline, answering with real PullResponses."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def pull(self, request: dict[str, Any], timeout: float) -> Any:
        self.calls.append(("pull", request))
        batch = self.batches.pop(0) if self.batches else None
        if isinstance(batch, Exception):
            raise batch
        return gapic_types.PullResponse(received_messages=batch or [])

    def acknowledge(self, request: dict[str, Any]) -> None:
        self.calls.append(("acknowledge", request))

    def modify_ack_deadline(self, request: dict[str, Any]) -> None:
        self.calls.append(("modify_ack_deadline", request))

    def of(self, name: str) -> list[dict[str, Any]]:
        return [r for op, r in self.calls if op == name]


def _received(ack_id: str, body: bytes, *, attempt: int = 1) -> Any:
    message = gapic_types.PubsubMessage(data=body, attributes={"kind": "detect"}, message_id=f"id-{ack_id}")
    return gapic_types.ReceivedMessage(ack_id=ack_id, message=message, delivery_attempt=attempt)


def _job_body(image_id: int) -> bytes:
    return json.dumps({"kind": "detect", "payload": {"image_id": image_id}, "dedup_key": f"detect:{image_id}"}).encode()


def test_pull_claims_jobs_leases_them_and_acks_only_what_it_is_told() -> None:
    from shared.queue.pubsub import PubSubPullQueue

    fake = FakePullSubscriber([[_received("a1", _job_body(1)), _received("a2", _job_body(2), attempt=3)]])
    q = PubSubPullQueue(fake, SUBSCRIPTION, kind="detect", visibility_s=90)
    claimed = q.claim("detect", 64)
    # THEN both jobs come out with their payload, attempt and ack id, leased for the visibility time
    assert [(c.job.payload["image_id"], c.job.attempts, c.lease_id) for c in claimed] == [(1, 1, "a1"), (2, 3, "a2")]
    assert fake.of("pull") == [{"subscription": SUBSCRIPTION, "max_messages": 64}]
    assert fake.of("modify_ack_deadline") == [
        {"subscription": SUBSCRIPTION, "ack_ids": ["a1", "a2"], "ack_deadline_seconds": 90}
    ]
    assert q.ack(claimed[:1]) == 1
    assert fake.of("acknowledge") == [{"subscription": SUBSCRIPTION, "ack_ids": ["a1"]}]


def test_pull_retry_waits_the_backoff_release_returns_at_once_and_poison_is_dead_lettered() -> None:
    from shared.queue.pubsub import PubSubPullQueue

    fake = FakePullSubscriber([[_received("a1", _job_body(1), attempt=2), _received("a2", _job_body(2))]])
    dead = FakePublisher()
    q = PubSubPullQueue(
        fake,
        SUBSCRIPTION,
        kind="detect",
        backoff_base_s=10,
        backoff_cap_s=40,
        dead_letter=PubSubPublisher(dead, TOPIC + "-dead"),
    )
    first, second = q.claim("detect", 10)
    assert q.fail(first, "gpu busy", retryable=True) == "retry"
    deadline = fake.of("modify_ack_deadline")[-1]
    assert deadline["ack_ids"] == ["a1"] and 0 < deadline["ack_deadline_seconds"] <= 40
    assert q.release([second]) == 1
    assert fake.of("modify_ack_deadline")[-1] == {
        "subscription": SUBSCRIPTION,
        "ack_ids": ["a2"],
        "ack_deadline_seconds": 0,
    }
    assert q.fail(second, "image refused", retryable=False) == "dead"
    assert dead.published[0]["data"] == _job_body(2) and dead.published[0]["attrs"]["error"] == "image refused"
    assert fake.of("acknowledge")[-1] == {"subscription": SUBSCRIPTION, "ack_ids": ["a2"]}


def test_pull_dead_letters_a_malformed_message_and_hands_out_the_rest() -> None:
    from shared.queue.pubsub import PubSubPullQueue

    fake = FakePullSubscriber([[_received("bad", b"not json"), _received("good", _job_body(5))]])
    q = PubSubPullQueue(fake, SUBSCRIPTION, kind="detect")
    claimed = q.claim("detect", 10)
    assert [c.lease_id for c in claimed] == ["good"]
    # no dead-letter topic configured: nacked so the subscription's dead-letter policy moves it
    assert {"subscription": SUBSCRIPTION, "ack_ids": ["bad"], "ack_deadline_seconds": 0} in fake.of(
        "modify_ack_deadline"
    )


def test_pull_timeout_is_an_empty_claim_and_an_unreachable_service_is_queue_unavailable() -> None:
    from google.api_core import exceptions as gexc

    from shared.queue.errors import QueueUnavailable
    from shared.queue.pubsub import PubSubPullQueue

    fake = FakePullSubscriber([gexc.DeadlineExceeded("no messages"), gexc.ServiceUnavailable("down")])
    q = PubSubPullQueue(fake, SUBSCRIPTION, kind="detect")
    assert q.claim("detect", 8) == []
    with pytest.raises(QueueUnavailable, match="Pub/Sub pull failed: ServiceUnavailable"):
        q.claim("detect", 8)
    with pytest.raises(ValueError, match="carries 'detect' jobs"):
        q.claim("embed", 8)


def _released_copy(published: dict[str, Any], ack_id: str, *, attempt: int) -> Any:
    """What the subscription delivers for a republished message."""
    message = gapic_types.PubsubMessage(data=published["data"], attributes=published["attrs"], message_id=ack_id)
    return gapic_types.ReceivedMessage(ack_id=ack_id, message=message, delivery_attempt=attempt)


def test_pull_release_republishes_with_prior_attempts_so_a_release_spends_no_delivery_attempt() -> None:
    from shared.queue.pubsub import PRIOR_ATTEMPTS, PubSubPullQueue

    # GIVEN a job on its second delivery (one failed attempt before), pulled by a worker that shuts down
    fake = FakePullSubscriber([[_received("a1", _job_body(1), attempt=2)]])
    topic = FakePublisher()
    q = PubSubPullQueue(fake, SUBSCRIPTION, kind="detect", republish=PubSubPublisher(topic, TOPIC), max_attempts=3)
    (first,) = q.claim("detect", 10)
    assert first.job.attempts == 2
    # WHEN it is released
    assert q.release([first]) == 1
    # THEN it is published again with the one attempt it had spent, and the delivery is acked, not nacked
    (copy,) = topic.published
    assert copy["topic"] == TOPIC and copy["data"] == _job_body(1)
    assert copy["attrs"] == {"kind": "detect", PRIOR_ATTEMPTS: "1"}
    assert fake.of("acknowledge") == [{"subscription": SUBSCRIPTION, "ack_ids": ["a1"]}]
    assert all(r["ack_deadline_seconds"] != 0 for r in fake.of("modify_ack_deadline"))
    # AND the republished message, on its first delivery, is the job's second attempt again
    fake.batches.append([_released_copy(copy, "b1", attempt=1)])
    (again,) = q.claim("detect", 10)
    assert again.job.attempts == 2 and again.job.payload == {"image_id": 1}
    # AND a failure still counts: below max_attempts it is retried, at max_attempts in all (counting
    # the attempts before the release) it is dead-lettered here, not left to the subscription's policy
    assert q.fail(again, "db down", retryable=True) == "retry"
    fake.batches.append([_released_copy(copy | {"attrs": {**copy["attrs"], PRIOR_ATTEMPTS: "2"}}, "c1", attempt=1)])
    (third,) = q.claim("detect", 10)
    assert third.job.attempts == 3
    assert q.fail(third, "db down", retryable=True) == "dead"


def test_pull_release_whose_republish_fails_nacks_instead() -> None:
    from shared.queue.pubsub import PubSubPullQueue

    fake = FakePullSubscriber([[_received("a1", _job_body(1))]])
    q = PubSubPullQueue(fake, SUBSCRIPTION, kind="detect", republish=PubSubPublisher(BrokenPublisher(), TOPIC))
    claimed = q.claim("detect", 10)
    assert q.release(claimed) == 1
    assert fake.of("acknowledge") == []
    assert fake.of("modify_ack_deadline")[-1] == {
        "subscription": SUBSCRIPTION,
        "ack_ids": ["a1"],
        "ack_deadline_seconds": 0,
    }


class BrokenPublisher(FakePublisher):
    def publish(self, topic: str, data: bytes, ordering_key: str = "", **attrs: str) -> Future[str]:
        future: Future[str] = Future()
        future.set_exception(RuntimeError("unavailable"))
        return future
