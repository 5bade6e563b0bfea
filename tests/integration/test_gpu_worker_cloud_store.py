"""The GPU service as deployed reads uploaded images from the cloud's object store, not a local folder.

``python -m infra.gpu_worker`` runs as a real process: on an SQS queue (moto server) it reads the
images from S3 on the same moto server without being told; with ``CONTENTFN_BLOB_BACKEND=gcs``
(what Terraform sets on Cloud Run) it reads them from fake-gcs-server. The images exist only there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.gpu_worker.wiring import detect_queue
from shared.config import Settings
from shared.queue.base import NewJob
from shared.services import Services
from tests.conftest import REPO
from tests.emulators import fake_gcs_url, moto_url  # noqa: F401 - fixtures
from tests.integration.test_gpu_worker_crash import wait_until, worker_env
from tests.vision_fixtures import TINY_BOXES_PER_IMAGE, distinct_jpegs, tiny_model, upload

pytestmark = pytest.mark.slow
AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def _upload_all(svc: Services, n: int) -> None:
    for i, data in enumerate(distinct_jpegs(n, 320, 240, seed=11)):
        upload(svc, f"images/{i:02d}.jpg", data)


def _run_service(env: dict[str, str], svc: Services, n: int) -> dict[str, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.gpu_worker", "--no-streams"], cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    try:
        done = wait_until(svc, lambda c: c["done"] == n or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, f"the GPU service exited with {proc.returncode}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return done


def _statuses(svc: Services) -> dict[str, int]:
    with svc.db.connection() as conn:
        rows = conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall()
        conn.commit()
    return {status: int(n) for status, n in rows}


@dataclass
class OnAws:
    svc: Services
    settings: Settings
    bucket: str
    queue_url: str
    moto_url: str
    queue: Any

    def env(self, model: Path, **extra: str) -> dict[str, str]:
        """The service's environment on this queue and bucket, told only where the endpoints are."""
        env = worker_env(
            self.settings,
            model,
            **AWS,
            AWS_ENDPOINT_URL_SQS=self.moto_url,
            CONTENTFN_GPU_QUEUE=self.queue_url,
            CONTENTFN_AWS_ENDPOINT_URL=self.moto_url,
            CONTENTFN_AWS_REGION="eu-west-1",
            CONTENTFN_BUCKET=self.bucket,
            **extra,
        )
        env.pop("CONTENTFN_BLOB_BACKEND", None)
        return env

    def relay_to_sqs(self, where: str = "true") -> int:
        """Send the detect jobs matching ``where`` to SQS, as a producer's relay does."""
        with self.svc.db.connection() as conn:
            payloads = [
                r[0] for r in conn.execute(f"DELETE FROM jobs WHERE kind = 'detect' AND {where} RETURNING payload")
            ]
            conn.commit()
        self.queue.enqueue_many([NewJob("detect", p, dedup_key=f"detect:{p['image_id']}") for p in payloads])
        return len(payloads)


@pytest.fixture
def on_aws(
    settings: Settings,
    moto_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[OnAws]:
    import boto3

    from shared.blob.s3 import S3Blob

    for key, value in AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_url)
    bucket = f"contentfn-uploads-{os.urandom(3).hex()}"
    blob = S3Blob.create(endpoint_url=moto_url, region="eu-west-1")
    blob._client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sqs = boto3.session.Session().client("sqs", endpoint_url=moto_url, region_name="eu-west-1")
    url = sqs.create_queue(QueueName=f"contentfn-detect-{os.urandom(3).hex()}")["QueueUrl"]
    on_s3 = settings.model_copy(update={"bucket": bucket})
    svc = Services.from_settings(on_s3, blob=blob)
    try:
        yield OnAws(svc, on_s3, bucket, url, moto_url, detect_queue(on_s3.model_copy(update={"gpu_queue": url})))
    finally:
        svc.close()


def test_service_on_sqs_reads_the_images_from_s3_beside_it(on_aws: OnAws, tmp_path: Path) -> None:
    # GIVEN six images uploaded to S3 and ingested, their detection jobs relayed to SQS
    _upload_all(on_aws.svc, 6)
    assert on_aws.relay_to_sqs() == 6
    # WHEN the service runs with two pipelines on that queue, with no store setting
    env = on_aws.env(tiny_model(tmp_path / "t.onnx"), CONTENTFN_GPU_PROCESSES="2")
    done = _run_service(env, on_aws.svc, 6)
    # THEN every image is detected, read from S3 (the local bucket folder was never written)
    assert done["done"] == 6 and done["detections"] == 6 * TINY_BOXES_PER_IMAGE
    assert _statuses(on_aws.svc) == {"done": 6}
    assert not (on_aws.settings.buckets_dir / on_aws.bucket).exists()
    assert on_aws.queue.depth("detect") == 0


def test_a_deferred_job_that_falls_due_is_relayed_to_the_queue_by_the_service(on_aws: OnAws, tmp_path: Path) -> None:
    # GIVEN three images: two relayed to SQS by their producer, one deferred by admission (in
    # Postgres, invisible for 3 more seconds) with no producer left to relay it once due
    _upload_all(on_aws.svc, 3)
    with on_aws.svc.db.connection() as conn:
        deferred = conn.execute(
            "UPDATE jobs SET visible_at = now() + interval '3 seconds'"
            " WHERE id = (SELECT min(id) FROM jobs WHERE kind = 'detect')"
            " RETURNING (payload->>'image_id')::bigint, visible_at"
        ).fetchone()
        conn.commit()
    assert deferred is not None
    assert on_aws.relay_to_sqs("visible_at <= now()") == 2
    # WHEN the service runs on SQS with CONTENTFN_QUEUES naming that queue for detect (as deployed)
    env = on_aws.env(
        tiny_model(tmp_path / "t.onnx"),
        CONTENTFN_QUEUES=json.dumps({"detect": on_aws.queue_url}),
        CONTENTFN_GPU_OUTBOX_RELAY_S="0.5",
    )
    done = _run_service(env, on_aws.svc, 3)
    # THEN the deferred image is detected too, after it fell due, and no job is left in Postgres
    assert done["done"] == 3 and done["queued"] == 0
    with on_aws.svc.db.connection() as conn:
        row = conn.execute("SELECT status, detected_at FROM images WHERE id = %s", (deferred[0],)).fetchone()
        conn.commit()
    assert row is not None and row[0] == "done" and row[1] >= deferred[1]
    assert on_aws.queue.depth("detect") == 0


def test_service_told_gcs_reads_the_images_from_cloud_storage(
    settings: Settings,
    fake_gcs_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    from shared.blob.gcs import GcsBlob

    bucket = f"contentfn-uploads-{os.urandom(3).hex()}"
    blob = GcsBlob.create(endpoint=fake_gcs_url, project="contentfn-test")
    blob._client.create_bucket(bucket)
    # GIVEN four images uploaded to Cloud Storage and ingested (jobs in Postgres)
    on_gcs = settings.model_copy(update={"bucket": bucket})
    svc = Services.from_settings(on_gcs, blob=blob)
    try:
        _upload_all(svc, 4)
        # WHEN the service runs with the store Terraform sets on Cloud Run
        env = worker_env(
            on_gcs,
            tiny_model(tmp_path / "t.onnx"),
            CONTENTFN_BLOB_BACKEND="gcs",
            CONTENTFN_GCS_ENDPOINT=fake_gcs_url,
            CONTENTFN_GCP_PROJECT="contentfn-test",
            CONTENTFN_BUCKET=bucket,
        )
        started = time.monotonic()
        done = _run_service(env, svc, 4)
        # THEN every image is detected from the objects in Cloud Storage
        assert done["done"] == 4 and done["detections"] == 4 * TINY_BOXES_PER_IMAGE, time.monotonic() - started
        assert _statuses(svc) == {"done": 4}
        assert not (on_gcs.buckets_dir / bucket).exists()
    finally:
        svc.close()
