"""Admission counts on the drain rate the running GPU workers measured, not only on configuration
(real PostgreSQL; the worker runs in process on CPU with a tiny model slowed to a known pace)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from infra.gpu_worker.worker import GpuWorker
from shared.config import Settings
from shared.services import Services
from shared.vision.capacity import Capacity, admission, measured_instance_rate, report_worker
from shared.vision.detector import Detector, ModelSpec
from tests.vision_fixtures import distinct_jpegs, tiny_model, upload


def _report(svc: Services, worker_id: str, host: str, rate: float | None, *, age_s: float = 0.0) -> None:
    with svc.db.connection() as conn:
        report_worker(conn, worker_id, host=host, provider="CPU", model="m", max_batch=8, img_per_s=rate, busy_s=30)
        if age_s:
            conn.execute(
                "UPDATE gpu_workers SET updated_at = now() - make_interval(secs => %s) WHERE id = %s",
                (age_s, worker_id),
            )
        conn.commit()


def test_fresh_rates_add_up_per_host_and_average_over_hosts(services: Services) -> None:
    # GIVEN two instances: one with two pipeline processes (30 + 20 img/s), one with one (70 img/s),
    # a process that has no rate yet, and a stale row from a process gone ten minutes ago
    _report(services, "a:1", "host-a", 30.0)
    _report(services, "a:2", "host-a", 20.0)
    _report(services, "b:1", "host-b", 70.0)
    _report(services, "b:2", "host-b", None)
    _report(services, "c:1", "host-c", 900.0, age_s=600)
    with services.db.connection() as conn:
        rate = measured_instance_rate(conn)
        conn.commit()
    # THEN one instance drains the mean of 50 and 70 img/s
    assert rate == 60.0


def test_admission_uses_the_measured_rate_and_falls_back_to_configuration(services: Services) -> None:
    s = services.settings.model_copy(
        update={"gpu_max_instances": 2, "gpu_expected_img_per_s": 5.0, "gpu_target_latency_s": 10.0}
    )
    capacity = Capacity.from_settings(s)
    with services.db.connection() as conn:
        configured = admission(conn, capacity, "detect")
        conn.commit()
    # GIVEN no worker has reported: 2 instances x 5 img/s configured, 10 s target → 100 queued at most
    assert configured.rate == "configured" and configured.max_backlog == 100
    # WHEN a worker reports it drains 40 img/s
    _report(services, "a:1", "host-a", 40.0)
    with services.db.connection() as conn:
        measured = admission(conn, capacity, "detect")
        conn.commit()
    # THEN admission allows what 2 x 40 img/s drain in 10 s
    assert measured.rate == "measured" and measured.drain_img_per_s == 80.0 and measured.max_backlog == 800
    assert measured.as_dict()["rate"] == "measured"


def test_a_busy_worker_reports_its_rate_and_removes_its_row_when_it_stops(settings: Settings, tmp_path: Path) -> None:
    svc = Services.from_settings(
        settings.model_copy(
            update={"gpu_max_batch": 2, "gpu_max_in_flight": 2, "gpu_decode_threads": 2, "worker_poll_s": 0.02}
        )
    )
    detector = Detector(ModelSpec(path=tiny_model(tmp_path / "tiny.onnx")))
    real_run = detector.run_raw

    def paced(
        pixels: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:  # a device that takes 0.1 s per batch of up to 2
        time.sleep(0.1)
        return real_run(pixels, out)

    detector.run_raw = paced  # type: ignore[method-assign]
    try:
        # GIVEN a backlog of 40 images
        for i, data in enumerate(distinct_jpegs(40, 96, 72, seed=3)):
            upload(svc, f"images/{i}.jpg", data)
        worker = GpuWorker(svc, detector)
        worker.report_s, worker.min_busy_s = 0.2, 1.0
        worker.start()
        # WHEN it has drained part of it while backlogged
        end = time.monotonic() + 30
        while worker.last_rate is None and time.monotonic() < end:
            time.sleep(0.05)
        # THEN its row carries a rate near its pace (at most 2 / 0.1 s = 20 img/s), and admission sees it
        assert worker.last_rate is not None and 2.0 < worker.last_rate <= 25.0
        time.sleep(0.5)
        with svc.db.connection() as conn:
            assert measured_instance_rate(conn) is not None
            conn.commit()
        worker.stop(grace_s=10)
        with svc.db.connection() as conn:
            left = conn.execute("SELECT count(*) FROM gpu_workers").fetchone()
            conn.commit()
        assert left == (0,)
    finally:
        svc.close()
