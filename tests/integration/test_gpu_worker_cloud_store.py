"""The GPU service as deployed reads uploaded images from the cloud's object store, not a local folder.

``python -m infra.gpu_worker`` runs as a real process: on an SQS queue (moto server) it reads the
images from S3 on the same moto server without being told; with ``CONTENTFN_BLOB_BACKEND=gcs``
(what Terraform sets on Cloud Run) it reads them from fake-gcs-server. The images exist only there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra.gpu_worker.worker import detect_queue
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


def test_service_on_sqs_reads_the_images_from_s3_beside_it(
    settings: Settings,
    moto_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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
    # GIVEN six images uploaded to S3 and ingested, their detection jobs relayed to SQS
    on_s3 = settings.model_copy(update={"bucket": bucket})
    svc = Services.from_settings(on_s3, blob=blob)
    try:
        _upload_all(svc, 6)
        with svc.db.connection() as conn:
            payloads = [r[0] for r in conn.execute("DELETE FROM jobs WHERE kind = 'detect' RETURNING payload")]
            conn.commit()
        queue: Any = detect_queue(on_s3.model_copy(update={"gpu_queue": url}))
        queue.enqueue_many([NewJob("detect", p, dedup_key=f"detect:{p['image_id']}") for p in payloads])
        # WHEN the service runs with two pipelines on that queue, told only where the endpoints are
        env = worker_env(
            on_s3,
            tiny_model(tmp_path / "t.onnx"),
            **AWS,
            AWS_ENDPOINT_URL_SQS=moto_url,
            CONTENTFN_GPU_QUEUE=url,
            CONTENTFN_AWS_ENDPOINT_URL=moto_url,
            CONTENTFN_AWS_REGION="eu-west-1",
            CONTENTFN_BUCKET=bucket,
            CONTENTFN_GPU_PROCESSES="2",
        )
        env.pop("CONTENTFN_BLOB_BACKEND", None)
        done = _run_service(env, svc, 6)
        # THEN every image is detected, read from S3 (the local bucket folder was never written)
        assert done["done"] == 6 and done["detections"] == 6 * TINY_BOXES_PER_IMAGE
        assert _statuses(svc) == {"done": 6}
        assert not (on_s3.buckets_dir / bucket).exists()
        assert queue.depth("detect") == 0
    finally:
        svc.close()


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
