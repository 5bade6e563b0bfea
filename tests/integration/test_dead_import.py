"""Cloud dead-letter queues drained into the dead-letter store of record (real PostgreSQL): SQS on
moto server through the CLI and the API; Pub/Sub at the client boundary (no emulator can be had)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from click.testing import CliRunner
from google.pubsub_v1 import types as gapic_types

from functions.api.core import Api
from local.cli import main
from local.server import ApiServer
from shared.platform.runtime import record_poison
from shared.queue.base import NewJob
from shared.queue.dead_import import import_pubsub_dead_letters, import_sqs_dlq, record_dead_letters, sqs_letter
from shared.queue.kinds import embed_job
from shared.queue.sqs import SqsQueue, job_message
from shared.services import Services
from tests.emulators import moto_url  # noqa: F401 - fixture


@pytest.fixture
def api(services: Services) -> Iterator[str]:
    srv = ApiServer(Api(services), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


@pytest.fixture
def sqs(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")


def _queue_with_dlq(sqs: Any) -> tuple[str, str]:
    name = f"contentfn-embed-{os.urandom(3).hex()}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "1"})
    return sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"], dlq


def _redriven(sqs: Any, url: str, body: str) -> str:
    """A message its consumer never finished: received past maxReceiveCount, SQS moves it to the DLQ."""
    message_id = str(sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"])
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages")
    assert not sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages")
    return message_id


def _depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def _env(services: Services, moto: str, tmp_path: Path) -> dict[str, str]:
    assert services.settings.database_url is not None
    return {
        "CONTENTFN_DATABASE_URL": services.settings.database_url.get_secret_value(),
        "CONTENTFN_DATA_DIR": str(tmp_path),
        "CONTENTFN_AWS_ENDPOINT_URL": moto,
        "CONTENTFN_AWS_REGION": "us-east-1",
    }


def test_a_dlq_message_imported_twice_appears_in_dead_jobs_once_and_replays(
    services: Services,
    api: str,
    sqs: Any,
    moto_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    url, dlq = _queue_with_dlq(sqs)
    job = embed_job(5, "h5")
    body = json.dumps(job_message(job))
    message_id = _redriven(sqs, url, body)
    assert _depth(sqs, dlq) == 1
    env = _env(services, moto_url, tmp_path) | {"CONTENTFN_DEAD_LETTER_SOURCES": json.dumps({dlq: "embed"})}
    # WHEN the DLQ is imported twice (the second run finds nothing new)
    runner = CliRunner()
    first = runner.invoke(main, ["dead", "import"], env=env)
    second = runner.invoke(main, ["dead", "import"], env=env)
    assert first.exit_code == 0 and "imported 1" in first.output, first.output
    assert second.exit_code == 0 and "imported 0" in second.output, second.output
    # THEN /dead-jobs shows it once, as the job it carried, and the DLQ is empty
    listed = httpx.get(f"{api}/dead-jobs").json()
    assert listed["total"] == 1
    (row,) = listed["items"]
    assert (row["kind"], row["replayable"], row["attempts"]) == ("embed", True, 2)
    assert "maximum number of times" in row["last_error"]
    assert _depth(sqs, dlq) == 0
    with services.db.connection() as conn:
        source = conn.execute("SELECT source_message_id FROM dead_jobs").fetchone()
        conn.commit()
    assert source == (f"sqs:{message_id}",)
    # AND replaying it queues the job again
    replay = httpx.post(f"{api}/dead-jobs/replay", json={"ids": [row["id"]]}).json()
    assert replay["replayed"] == [row["id"]]


def test_an_import_that_crashed_before_deleting_the_message_does_not_record_it_twice(
    services: Services,
    sqs: Any,
    moto_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    url, dlq = _queue_with_dlq(sqs)
    _redriven(sqs, url, json.dumps(job_message(embed_job(6, "h6"))))
    # GIVEN an import that recorded the message and died before deleting it from the DLQ
    (msg,) = sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], VisibilityTimeout=0)["Messages"]
    assert record_dead_letters(services.db, [sqs_letter(msg, "embed")]) == (1, 0)
    # WHEN the next import runs
    result = CliRunner().invoke(
        main, ["dead", "import", "--source", f"{dlq}=embed"], env=_env(services, moto_url, tmp_path)
    )
    # THEN the message is removed from the DLQ and recorded once
    assert result.exit_code == 0 and "imported 0, already recorded 1" in result.output, result.output
    assert _depth(sqs, dlq) == 0
    with services.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM dead_jobs").fetchone() == (1,)
        conn.commit()


def test_poison_a_function_recorded_and_sqs_later_redrove_is_not_recorded_again(
    services: Services,
    sqs: Any,
    moto_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    url, dlq = _queue_with_dlq(sqs)
    # GIVEN a poison job the embed function recorded at delivery (kept in batchItemFailures until redrive)
    message_id = _redriven(sqs, url, json.dumps({"kind": "embed", "payload": {"track": "x"}}))
    record_poison(
        services.db, kind="embed", envelope={"kind": "embed"}, error="bad payload", dedup_key=f"embed:aws:{message_id}"
    )
    # WHEN its queue's DLQ is imported
    result = CliRunner().invoke(
        main, ["dead", "import", "--source", f"{dlq}=embed"], env=_env(services, moto_url, tmp_path)
    )
    # THEN the function's record stays the only one, and the DLQ no longer holds it
    assert result.exit_code == 0 and "already recorded 1" in result.output, result.output
    assert _depth(sqs, dlq) == 0
    with services.db.connection() as conn:
        assert conn.execute("SELECT last_error FROM dead_jobs").fetchall() == [("bad payload",)]
        conn.commit()


def test_a_poison_copy_in_the_gpu_dlq_is_imported_with_its_error_under_the_original_message_id(
    services: Services, sqs: Any
) -> None:
    url, dlq = _queue_with_dlq(sqs)
    queue = SqsQueue(sqs, url, kind="detect")
    queue.enqueue_many([NewJob("detect", {"image_id": 9}, "detect:9")])
    (claimed,) = queue.claim("detect", 1)
    assert queue.fail(claimed, "image refused: not an image", retryable=False) == "dead"
    first = import_sqs_dlq(services.db, sqs, dlq, kind="detect")
    assert (first.imported, first.already_recorded) == (1, 0)
    with services.db.connection() as conn:
        row = conn.execute("SELECT kind, last_error, retryable, source_message_id FROM dead_jobs").fetchone()
        conn.commit()
    assert row == ("detect", "image refused: not an image", False, f"sqs:{claimed.id}")


class _DeadLetterSubscription:
    """SubscriberClient's unary pull/acknowledge over a dead-letter subscription; a message not
    acknowledged is delivered again on the next pull, as Pub/Sub does."""

    def __init__(self, messages: list[Any], *, lose_first_ack: bool = False) -> None:
        self.waiting = list(messages)
        self.acked: list[str] = []
        self._lose_ack = lose_first_ack

    def pull(self, request: dict[str, Any], timeout: float) -> Any:
        batch = [m for m in self.waiting if m.ack_id not in self.acked][: request["max_messages"]]
        return gapic_types.PullResponse(received_messages=batch)

    def acknowledge(self, request: dict[str, Any]) -> None:
        if self._lose_ack:
            self._lose_ack = False
            raise ConnectionError("ack lost")
        self.acked.extend(request["ack_ids"])


def _dead_lettered(ack_id: str, message_id: str, body: bytes, deliveries: int) -> Any:
    attrs = {
        "kind": "detect",
        "CloudPubSubDeadLetterSourceDeliveryCount": str(deliveries),
        "CloudPubSubDeadLetterSourceSubscription": "detect-gpu",
    }
    message = gapic_types.PubsubMessage(data=body, attributes=attrs, message_id=message_id)
    return gapic_types.ReceivedMessage(ack_id=ack_id, message=message)


def test_pubsub_dead_letters_are_imported_once_even_when_the_ack_was_lost(services: Services, api: str) -> None:
    body = json.dumps({"kind": "detect", "payload": {"image_id": 3}, "dedup_key": "detect:3"}).encode()
    subscription = "projects/p/subscriptions/detect-dead-letters"
    fake = _DeadLetterSubscription([_dead_lettered("d1", "m-1", body, 5)], lose_first_ack=True)
    # GIVEN an import whose acknowledgement was lost after the insert committed
    with pytest.raises(ConnectionError):
        import_pubsub_dead_letters(services.db, fake, subscription, kind="detect")
    # WHEN the message is delivered again to the next import
    report = import_pubsub_dead_letters(services.db, fake, subscription, kind="detect")
    # THEN it is acknowledged and in /dead-jobs once, with the deliveries Pub/Sub counted
    assert (report.imported, report.already_recorded) == (0, 1) and fake.acked == ["d1"]
    (row,) = httpx.get(f"{api}/dead-jobs").json()["items"]
    assert (row["kind"], row["attempts"], row["replayable"]) == ("detect", 5, True)


def test_the_scheduled_deadletters_function_drains_the_dlqs_terraform_lists(
    services: Services,
    sqs: Any,
    moto_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import functions.deadletters.aws as deadletters_aws
    from local.lambda_context import LocalLambdaContext
    from tests.event_files import load_event

    url, dlq = _queue_with_dlq(sqs)
    _redriven(sqs, url, json.dumps(job_message(embed_job(8, "h8"))))
    env = _env(services, moto_url, tmp_path) | {"CONTENTFN_DEAD_LETTER_SOURCES": json.dumps({dlq: "embed"})}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    deadletters_aws.runtime.close()
    try:
        # GIVEN the schedule's tick (EventBridge Scheduler) WHEN it fires twice
        first = deadletters_aws.handler(load_event("aws_eventbridge_scheduler.json"), LocalLambdaContext())
        second = deadletters_aws.handler(load_event("aws_eventbridge_scheduler.json"), LocalLambdaContext())
    finally:
        deadletters_aws.runtime.close()
    # THEN the DLQ's message is in the dead-letter store once and the DLQ is empty
    assert first["imported"] == 1 and second["imported"] == 0
    assert _depth(sqs, dlq) == 0
    with services.db.connection() as conn:
        assert conn.execute("SELECT kind FROM dead_jobs").fetchall() == [("embed",)]
        conn.commit()
