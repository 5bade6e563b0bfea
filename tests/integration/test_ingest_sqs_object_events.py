"""S3 → SQS → ingest Lambda, as Terraform wires it: the bucket notifies the ingest queue of uploads
*and* removals (moto server sends both itself), and the AWS adapter routes each kind when it arrives
wrapped in an SQS record: an upload becomes tracks, a removal takes away what the object alone fed."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.services import Services
from tests import emulators
from tests.entry_fixtures import sample_jsonl
from tests.integration.test_one_upload_every_route import _queue, _use, aws_env, fresh_settings  # noqa: F401
from tests.sqs_event_source import receive_event, settle

moto_url = emulators.moto_url

KEY = "incoming/removed later.jsonl"
DATA = sample_jsonl(12, tag="sqs-removal")


def _counts(settings: Settings) -> tuple[int, int]:
    svc = Services.from_settings(settings, migrate=False)
    try:
        with svc.db.connection() as conn:
            tracks = conn.execute("SELECT count(*) FROM tracks").fetchone()
            jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()
            conn.commit()
    finally:
        svc.close()
    assert tracks is not None and jobs is not None
    return int(tracks[0]), int(jobs[0])


def _deliver(sqs: Any, url: str, expect: str) -> None:
    from functions.ingest.aws import handler

    event = receive_event(sqs, url)
    # S3 sends an s3:TestEvent when notifications are first configured; the handler acks it too.
    assert any(expect in r["body"] for r in event["Records"]), f"no {expect} notification was queued"
    response = handler(event, LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    assert settle(sqs, url, event, response) == len(event["Records"])


def test_an_upload_and_its_removal_queued_by_s3_in_sqs_ingest_then_remove_the_tracks(
    fresh_settings: Callable[[str], Settings],  # noqa: F811
    aws_env: Any,  # noqa: F811
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import functions.ingest.aws as ingest_aws

    s3, sqs, _ = aws_env
    settings = fresh_settings("sqs_removal")
    bucket = f"removal-sqs-{os.urandom(3).hex()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    url, arn = _queue(sqs, f"{bucket}-ingest")
    # GIVEN the bucket notifies the ingest queue of both kinds of event, as Terraform configures it
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    _use(settings, monkeypatch, CONTENTFN_BLOB_BACKEND="s3", CONTENTFN_AWS_ENDPOINT_URL=moto_url)
    try:
        # WHEN a file is uploaded and S3's ObjectCreated record reaches the handler through SQS
        s3.put_object(Bucket=bucket, Key=KEY, Body=DATA)
        _deliver(sqs, url, "ObjectCreated")
        # THEN its tracks and their jobs are stored
        tracks, jobs = _counts(settings)
        assert tracks == 12 and jobs > 0

        # WHEN the file is deleted and S3's ObjectRemoved record reaches the handler through SQS
        s3.delete_object(Bucket=bucket, Key=KEY)
        _deliver(sqs, url, "ObjectRemoved")
        # THEN the tracks it alone fed are gone, with their queued jobs
        assert _counts(settings) == (0, 0)
    finally:
        ingest_aws.runtime.close()
