"""Overload: a producer at 10x the capped worker's capacity.

Memory stays bounded (the worker holds at most its permits), the queue lag grows, admission defers
new work instead of piling it on, and nothing is dropped: every image ends up detected once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from functions.ingest.reports import ImageReport
from infra.gpu_worker.worker import GpuWorker
from shared.config import Settings
from shared.services import Services
from shared.vision.capacity import Capacity, queue_lag_s
from shared.vision.detector import Detector, ModelSpec
from tests.vision_fixtures import TINY_BOXES_PER_IMAGE, distinct_jpegs, tiny_model, upload

pytestmark = pytest.mark.slow

BATCH, BATCH_SECONDS = 2, 0.4  # the worker's capacity: 5 images/s
PRODUCER_PER_S, PRODUCED = 50, 80


@pytest.fixture
def capped(settings: Settings) -> Iterator[Services]:
    svc = Services.from_settings(
        settings.model_copy(
            update={
                "gpu_max_batch": BATCH,
                "gpu_max_in_flight": 2,
                "gpu_max_wait_ms": 5.0,
                "gpu_decode_threads": 2,
                "gpu_expected_img_per_s": BATCH / BATCH_SECONDS,
                "gpu_target_latency_s": 2.0,
                "worker_poll_s": 0.05,
            }
        )
    )
    try:
        yield svc
    finally:
        svc.close()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_producer_at_ten_times_capacity_is_deferred_and_nothing_is_dropped(capped: Services, tmp_path: Path) -> None:
    svc = capped
    detector = Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx")))
    real_run = detector.run_raw

    def slow_run(
        pixels: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:  # a device that takes 0.4 s per batch of 2
        time.sleep(BATCH_SECONDS)
        return real_run(pixels, out)

    detector.run_raw = slow_run  # type: ignore[method-assign]
    images = list(distinct_jpegs(PRODUCED, 160, 120, seed=11))
    worker = GpuWorker(svc, detector).start()
    capacity = Capacity.from_settings(svc.settings)
    # GIVEN a producer uploading at 50 images/s against a worker capped at 5 images/s
    reports, lags, rss = [], [], [rss_mb()]
    started = time.monotonic()
    try:
        for i, data in enumerate(images):
            reports.append(upload(svc, f"images/{i}.jpg", data))
            if i % 20 == 0:
                with svc.db.connection() as conn:
                    lags.append(queue_lag_s(conn, "detect"))
                    conn.commit()
                rss.append(rss_mb())
            time.sleep(max(0.0, started + (i + 1) / PRODUCER_PER_S - time.monotonic()))
        produced_in = time.monotonic() - started
        # WHEN the backlog drains
        end = time.monotonic() + 60
        while svc.queue.depth("detect") and time.monotonic() < end:
            time.sleep(0.1)
            assert worker.in_flight <= worker.permits
    finally:
        worker.stop(grace_s=5)
    # THEN the producer really ran at about ten times capacity
    assert PRODUCED / produced_in >= 8 * capacity.drain_img_per_s
    # the worker never held more than its permits, and memory did not grow with the backlog
    assert worker.metrics.in_flight_peak <= worker.permits == BATCH * 2
    assert max(rss) - rss[0] < 60
    # the lag grew while the producer outran the worker; admission deferred most of the burst
    assert lags[-1] > lags[0] and lags[-1] >= 0.3
    deferred = [r for r in reports if isinstance(r, ImageReport) and r.admission and not r.admission["admit"]]
    assert len(deferred) >= PRODUCED // 2
    assert all(r.admission and r.admission["defer_s"] > 0 for r in deferred)
    # and nothing was dropped: every image detected once, nothing dead-lettered
    with svc.db.connection() as conn:
        done = conn.execute("SELECT count(*) FROM images WHERE status = 'done'").fetchone()
        dets = conn.execute("SELECT count(*) FROM detections").fetchone()
        conn.commit()
    assert done == (PRODUCED,) and dets == (PRODUCED * TINY_BOXES_PER_IMAGE,)
    assert svc.queue.dead_count() == 0
