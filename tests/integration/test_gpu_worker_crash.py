"""Killing, stopping and restarting the GPU worker process loses no job and duplicates no detection.

The worker runs as a real subprocess (``python -m infra.gpu_worker``) against a real PostgreSQL;
row counts are checked after each step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from shared.services import Services
from tests.conftest import REPO
from tests.vision_fixtures import TINY_BOXES_PER_IMAGE, distinct_jpegs, tiny_model, upload

N_IMAGES = 96
pytestmark = pytest.mark.slow


@pytest.fixture
def crash_services(settings: Settings) -> Iterator[Services]:
    svc = Services.from_settings(settings)
    try:
        yield svc
    finally:
        svc.close()


def worker_env(settings: Settings, model: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``python -m infra.gpu_worker`` process on this test's database and model."""
    return {
        **os.environ,
        "CONTENTFN_DATABASE_URL": settings.database_url.get_secret_value() if settings.database_url else "",
        "CONTENTFN_DATA_DIR": str(settings.data_dir),
        "CONTENTFN_DETECTOR_MODEL_PATH": str(model),
        "CONTENTFN_GPU_MAX_BATCH": "4",
        "CONTENTFN_GPU_MAX_IN_FLIGHT": "2",
        "CONTENTFN_GPU_DECODE_THREADS": "2",
        "CONTENTFN_GPU_METRICS_PORT": "0",
        "CONTENTFN_QUEUE_VISIBILITY_S": "3",
        "CONTENTFN_WORKER_POLL_S": "0.05",
        "CONTENTFN_GPU_GRACE_S": "10",
        "CONTENTFN_LOG_LEVEL": "WARNING",
        **extra,
    }


def start_worker(settings: Settings, model: Path) -> subprocess.Popen[bytes]:
    env = worker_env(settings, model)
    return subprocess.Popen(
        [sys.executable, "-m", "infra.gpu_worker", "--no-streams"], cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )


def counts(svc: Services) -> dict[str, int]:
    with svc.db.connection() as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM images WHERE status = 'done'),
                   (SELECT count(*) FROM jobs WHERE kind = 'detect'),
                   (SELECT count(*) FROM jobs WHERE kind = 'detect' AND lease_id IS NOT NULL AND visible_at > now()),
                   (SELECT count(*) FROM detections),
                   (SELECT count(*) FROM (SELECT DISTINCT image_id, class_id, x1, y1, x2, y2 FROM detections) d),
                   (SELECT count(*) FROM dead_jobs)
            """
        ).fetchone()
        conn.commit()
    assert row is not None
    return dict(zip(("done", "queued", "leased", "detections", "distinct", "dead"), map(int, row), strict=True))


def wait_until(svc: Services, test, timeout: float = 90.0) -> dict[str, int]:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        c = counts(svc)
        if test(c):
            return c
        time.sleep(0.02)
    raise AssertionError(f"timed out; counts {counts(svc)}")


def queue_images(svc: Services) -> None:
    for i, data in enumerate(distinct_jpegs(N_IMAGES, 640, 480, seed=7)):
        upload(svc, f"images/{i:03d}.jpg", data)
    assert svc.queue.depth("detect") == N_IMAGES


def test_sigkill_mid_batch_loses_no_job_and_duplicates_no_detection(
    crash_services: Services, settings: Settings, tmp_path: Path
) -> None:
    svc = crash_services
    model = tiny_model(tmp_path / "slow.onnx", size=256, work=4)
    # GIVEN 96 queued images and a worker process that has written some batches and holds others
    queue_images(svc)
    proc = start_worker(settings, model)
    try:
        at_kill = wait_until(svc, lambda c: c["done"] >= 8 and c["leased"] > 0)
        # WHEN it is killed with SIGKILL mid-batch
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    after = counts(svc)
    # THEN every job is either written (and acked) or still queued, and nothing is half-written
    assert after["done"] + after["queued"] == N_IMAGES
    assert after["detections"] == after["done"] * TINY_BOXES_PER_IMAGE
    assert after["leased"] > 0 and at_kill["done"] < N_IMAGES
    # WHEN a new worker starts (the dead one's leases expire after the visibility timeout)
    proc = start_worker(settings, model)
    try:
        final = wait_until(svc, lambda c: c["queued"] == 0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    # THEN every image is done once, with exactly its detections, and nothing was dead-lettered
    final = counts(svc)
    assert final["done"] == N_IMAGES
    assert final["detections"] == final["distinct"] == N_IMAGES * TINY_BOXES_PER_IMAGE
    assert final["dead"] == 0


def test_sigterm_finishes_or_releases_in_flight_work(
    crash_services: Services, settings: Settings, tmp_path: Path
) -> None:
    svc = crash_services
    model = tiny_model(tmp_path / "slow.onnx", size=256, work=4)
    queue_images(svc)
    proc = start_worker(settings, model)
    try:
        wait_until(svc, lambda c: c["done"] >= 4 and c["leased"] > 0)
        # WHEN it gets SIGTERM while holding leased jobs
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    finally:
        proc.kill()
    # THEN it exits cleanly, holds no lease, and every job is either done or claimable now
    assert rc == 0
    c = counts(svc)
    assert c["leased"] == 0
    assert c["done"] + c["queued"] == N_IMAGES
    assert c["detections"] == c["done"] * TINY_BOXES_PER_IMAGE
