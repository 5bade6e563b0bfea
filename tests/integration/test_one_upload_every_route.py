"""One upload, five deliveries: GCS CloudEvent (real functions-framework server, fake-gcs-server),
S3 notification, S3 inside SQS, S3 through EventBridge (moto server: S3 sends the notifications
itself) and the local bucket watcher. Each route runs on a fresh database; the rows must match."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import psycopg
import pytest

from local.lambda_context import LocalLambdaContext
from shared.config import Settings, load_settings
from shared.services import Services
from tests import emulators
from tests.conftest import _with_db, model_dir_path
from tests.entry_fixtures import FunctionsFrameworkServer, entry_environment, sample_jsonl
from tests.event_files import load_event
from tests.sqs_event_source import receive_event, settle

moto_url = emulators.moto_url
fake_gcs_url = emulators.fake_gcs_url

KEY = "incoming/Beyoncé tracks 2024.jsonl"
DATA = sample_jsonl(40, tag="route")
Snapshot = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


@pytest.fixture
def fresh_settings(pg_server_url: str, template_db: str, tmp_path: Path) -> Iterator[Callable[[str], Settings]]:
    made: list[str] = []

    def make(name: str) -> Settings:
        db = f"contentfn_route_{os.getpid()}_{name}_{len(made)}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}" TEMPLATE "{template_db}"')
        made.append(db)
        return load_settings(
            data_dir=tmp_path / name, database_url=_with_db(pg_server_url, db), model_dir=model_dir_path()
        )

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for db in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def snapshot(settings: Settings) -> Snapshot:
    svc = Services.from_settings(settings, migrate=False)
    try:
        with svc.db.connection() as conn:
            tracks = conn.execute(
                "SELECT id, source, source_id, artist, title, lyrics, metadata, content_hash FROM tracks ORDER BY id"
            ).fetchall()
            jobs = conn.execute("SELECT kind, payload, dedup_key FROM jobs ORDER BY id").fetchall()
            conn.commit()
    finally:
        svc.close()
    return tracks, jobs


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    session = boto3.session.Session(region_name="eu-west-1")
    return (
        session.client("s3", endpoint_url=moto_url),
        session.client("sqs", endpoint_url=moto_url),
        session.client("events", endpoint_url=moto_url),
    )


def _use(settings: Settings, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    import functions.ingest.aws as ingest_aws

    ingest_aws.runtime.close()
    for name, value in entry_environment(settings, **extra).items():
        monkeypatch.setenv(name, value)


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def route_s3_notification(settings: Settings, aws: Any, moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.ingest.aws import handler

    s3, _, _ = aws
    bucket = f"route-s3-{os.urandom(3).hex()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    head = s3.put_object(Bucket=bucket, Key=KEY, Body=DATA)
    event = load_event("aws_s3_object_created.json")
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"] = bucket
    obj["object"].update(key=quote_plus(KEY, safe="/"), size=len(DATA), eTag=head["ETag"].strip('"'))
    del obj["object"]["versionId"]
    _use(settings, monkeypatch, CONTENTFN_BLOB_BACKEND="s3", CONTENTFN_AWS_ENDPOINT_URL=moto)
    assert handler(event, LocalLambdaContext())["reports"][0]["status"] == "ok"


def route_s3_in_sqs(settings: Settings, aws: Any, moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.ingest.aws import handler

    s3, sqs, _ = aws
    bucket = f"route-sqs-{os.urandom(3).hex()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    url, arn = _queue(sqs, f"{bucket}-ingest")
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    s3.put_object(Bucket=bucket, Key=KEY, Body=DATA)  # S3 (moto) queues the notification itself
    _use(settings, monkeypatch, CONTENTFN_BLOB_BACKEND="s3", CONTENTFN_AWS_ENDPOINT_URL=moto)
    event = receive_event(sqs, url)
    # S3 first sends an s3:TestEvent when notifications are configured; the handler acks it.
    assert any("ObjectCreated" in r["body"] for r in event["Records"])
    response = handler(event, LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    assert settle(sqs, url, event, response) == len(event["Records"])


def route_eventbridge(settings: Settings, aws: Any, moto: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.ingest.aws import handler

    s3, sqs, events = aws
    bucket = f"route-eb-{os.urandom(3).hex()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    url, arn = _queue(sqs, f"{bucket}-target")
    rule = f"{bucket}-created"
    events.put_rule(
        Name=rule, EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]}), State="ENABLED"
    )
    events.put_targets(Rule=rule, Targets=[{"Id": "capture", "Arn": arn}])
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.put_object(Bucket=bucket, Key=KEY, Body=DATA)
    captured = receive_event(sqs, url)["Records"]
    assert captured, "EventBridge (moto) did not deliver the Object Created event"
    event = json.loads(captured[0]["body"])  # what EventBridge would invoke the function with
    _use(settings, monkeypatch, CONTENTFN_BLOB_BACKEND="s3", CONTENTFN_AWS_ENDPOINT_URL=moto)
    assert handler(event, LocalLambdaContext())["reports"][0]["status"] == "ok"


def route_gcs_cloudevent(settings: Settings, fake_gcs: str, log_dir: Path) -> None:
    from shared.blob.gcs import GcsBlob

    gcs = GcsBlob.create(endpoint=fake_gcs, project="contentfn-test")
    bucket = f"route-gcs-{os.urandom(3).hex()}"
    gcs._client.create_bucket(bucket)
    info = gcs.put(bucket, KEY, DATA, content_type="application/x-ndjson")
    doc = load_event("gcp_storage_finalized_binary.json")
    doc["body"].update(bucket=bucket, name=KEY, generation=info.generation, size=str(info.size), etag=info.etag)
    env = entry_environment(settings, CONTENTFN_BLOB_BACKEND="gcs", CONTENTFN_GCS_ENDPOINT=fake_gcs)
    server = FunctionsFrameworkServer("ingest", "ingest", "cloudevent", env, log_dir / "ff-ingest.log").wait_ready()
    try:
        resp = server.send(doc)
        assert resp.status_code == 200, resp.text
    finally:
        server.stop()


def route_local_watcher(settings: Settings) -> None:
    from local.workers import BucketWatcher

    svc = Services.from_settings(settings)
    try:
        svc.blob.put(settings.bucket, KEY, DATA)
        watcher = BucketWatcher(svc)
        watcher.tick()  # first sight: pending until stable
        watcher.tick()  # stable: delivered
    finally:
        svc.close()


def test_one_upload_through_every_route_yields_identical_rows(
    fresh_settings: Callable[[str], Settings],
    aws_env: Any,
    moto_url: str,
    fake_gcs_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import functions.ingest.aws as ingest_aws

    snapshots: dict[str, Snapshot] = {}
    try:
        for name, run in {
            "s3": lambda s: route_s3_notification(s, aws_env, moto_url, monkeypatch),
            "sqs": lambda s: route_s3_in_sqs(s, aws_env, moto_url, monkeypatch),
            "eventbridge": lambda s: route_eventbridge(s, aws_env, moto_url, monkeypatch),
            "gcs": lambda s: route_gcs_cloudevent(s, fake_gcs_url, tmp_path),
            "local": route_local_watcher,
        }.items():
            settings = fresh_settings(name)
            run(settings)
            snapshots[name] = snapshot(settings)
    finally:
        ingest_aws.runtime.close()
    reference = snapshots["local"]
    assert len(reference[0]) == 40 and len(reference[1]) == 80  # one embed and one enrich job per track
    for name, snap in snapshots.items():
        assert snap == reference, f"route {name} differs from the local watcher"
