"""SQS queue adapter against a moto server: batches, receive/delete, visibility, DLQ via redrive."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from shared.queue.base import NewJob
from shared.queue.sqs import SqsQueue
from tests.emulators import moto_url  # noqa: F401 - fixture


@pytest.fixture
def sqs_client(moto_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # noqa: F811
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return boto3.session.Session().client("sqs", endpoint_url=moto_url, region_name="eu-west-1")


def _queue(client, *, max_receives: int = 3) -> tuple[SqsQueue, str]:  # type: ignore[no-untyped-def]
    name = f"contentfn-embed-{os.urandom(3).hex()}"
    dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})
    url = client.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "30"})[
        "QueueUrl"
    ]
    return SqsQueue(client, url, kind="embed", backoff_base_s=0.01, backoff_cap_s=0.02), dlq_url


def _jobs(n: int) -> list[NewJob]:
    return [NewJob("embed", {"track_id": i}, dedup_key=f"embed:{i}") for i in range(n)]


def _drain(queue: SqsQueue, want: int, timeout_s: float = 10.0) -> list:  # type: ignore[type-arg]
    got: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        got.extend(queue.claim("embed", 10))
    return got


def test_batch_send_receive_and_delete_round_trip_every_job(sqs_client) -> None:  # type: ignore[no-untyped-def]
    queue, _ = _queue(sqs_client)
    # GIVEN 25 jobs (three SQS batches) WHEN sent and received
    assert queue.enqueue_many(_jobs(25)) == 25
    claimed = _drain(queue, 25)
    # THEN every job arrives once, with its kind, payload, dedup key and attempt number
    assert sorted(c.job.payload["track_id"] for c in claimed) == list(range(25))
    assert {c.job.kind for c in claimed} == {"embed"} and all(c.job.attempts == 1 for c in claimed)
    assert claimed[0].job.dedup_key == f"embed:{claimed[0].job.payload['track_id']}"
    # AND deleting them empties the queue
    assert queue.ack(claimed) == 25
    assert queue.depth() == 0


def test_release_makes_a_message_visible_again_at_once_without_spending_an_attempt(sqs_client: Any) -> None:
    queue, _ = _queue(sqs_client)
    queue.enqueue_many(_jobs(1))
    first = queue.claim("embed", 1)
    assert first and queue.claim("embed", 1) == []  # hidden while leased
    queue.release(first)
    again = queue.claim("embed", 1)
    # THEN the same job comes back at once (re-sent as a new message) with its attempt unspent
    assert again and again[0].job.payload == first[0].job.payload and again[0].job.attempts == 1
    assert again[0].job.dedup_key == first[0].job.dedup_key and queue.depth() == 1


def test_released_message_keeps_its_attempts_and_never_reaches_the_dlq_by_releases(sqs_client: Any) -> None:
    queue, _ = _queue(sqs_client, max_receives=2)
    queue.enqueue_many(_jobs(1))
    # GIVEN a job released five times (a device-process outage), more than maxReceiveCount
    for _ in range(5):
        claimed = _drain(queue, 1)
        assert claimed and claimed[0].job.attempts == 1
        assert queue.release(claimed) == 1
    # THEN it never went to the DLQ and still has all its attempts
    assert queue.dead_count() == 0
    claimed = _drain(queue, 1)
    assert claimed[0].job.attempts == 1
    # AND a failure after a release still counts: the second failed attempt dead-letters it
    assert queue.fail(claimed[0], "db down", retryable=True) == "retry"
    time.sleep(1.1)
    claimed = _drain(queue, 1)
    assert claimed[0].job.attempts == 2
    queue.release(claimed)
    claimed = _drain(queue, 1)
    assert claimed[0].job.attempts == 2
    assert queue.fail(claimed[0], "db down", retryable=True) == "dead"
    assert queue.dead_count() == 1 and queue.depth() == 0


def test_retryable_failure_hides_the_message_then_redrive_dead_letters_it(sqs_client) -> None:  # type: ignore[no-untyped-def]
    queue, _ = _queue(sqs_client, max_receives=2)
    queue.enqueue_many(_jobs(1))
    outcomes = []
    for _ in range(2):
        claimed = _drain(queue, 1)
        assert claimed, "message should come back after its backoff"
        outcomes.append(queue.fail(claimed[0], "db down", retryable=True))
        time.sleep(1.1)  # SQS visibility has one-second granularity
    assert outcomes == ["retry", "dead"]
    # WHEN it is received once more past maxReceiveCount THEN SQS moves it to the DLQ
    assert queue.claim("embed", 10) == []
    assert queue.dead_count() == 1 and queue.depth() == 0


def test_poison_goes_to_the_dlq_at_once_with_its_error(sqs_client) -> None:  # type: ignore[no-untyped-def]
    queue, dlq_url = _queue(sqs_client, max_receives=5)
    queue.enqueue_many(_jobs(1))
    claimed = queue.claim("embed", 1)
    assert queue.fail(claimed[0], "payload lacks a track_id", retryable=False) == "dead"
    assert queue.depth() == 0
    msgs = sqs_client.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert msgs[0]["MessageAttributes"]["error"]["StringValue"] == "payload lacks a track_id"
    assert json.loads(msgs[0]["Body"])["payload"] == {"track_id": 0}
