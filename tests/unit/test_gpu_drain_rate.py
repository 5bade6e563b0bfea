"""The drain rate a GPU worker reports: measured only while a backlog kept it busy."""

from __future__ import annotations

from infra.gpu_worker.metrics import WorkerMetrics
from tests.fake_clock import FakeClock


def test_rate_counts_only_time_and_images_while_backlogged() -> None:
    clock = FakeClock()
    m = WorkerMetrics(clock=clock)
    # GIVEN 20 s of a backlog during which 400 images were written (20 img/s)
    m.set_backlogged(True)
    for _ in range(20):
        clock.now += 1
        m.record_written(19, 1)
    # and then 60 s idle, with a trickle of 5 images that says nothing about capacity
    m.set_backlogged(False)
    clock.now += 60
    m.record_written(5, 0)
    # THEN the rate is the backlogged one
    rate = m.drain_rate(min_busy_s=10)
    assert rate is not None and abs(rate - 20.0) < 1e-9
    assert abs(m.busy_s() - 20.0) < 1e-9


def test_no_rate_until_busy_long_enough() -> None:
    clock = FakeClock()
    m = WorkerMetrics(clock=clock)
    m.set_backlogged(True)
    clock.now += 3
    m.record_written(30, 0)
    assert m.drain_rate(min_busy_s=10) is None
    clock.now += 9
    m.record_written(90, 0)
    assert m.drain_rate(min_busy_s=10) == 10.0


def test_rate_follows_the_recent_horizon() -> None:
    clock = FakeClock()
    m = WorkerMetrics(clock=clock)
    m.set_backlogged(True)
    # GIVEN a first busy stretch at 10 img/s, sampled every 30 s
    for _ in range(10):
        clock.now += 30
        m.record_written(300, 0)
        m.drain_rate(horizon_s=120)
    # WHEN the worker slows to 4 img/s (a heavier model, a slower bucket) for longer than the horizon
    for _ in range(6):
        clock.now += 30
        m.record_written(120, 0)
        rate = m.drain_rate(horizon_s=120)
    # THEN the reported rate is the recent one
    assert rate is not None and abs(rate - 4.0) < 1e-9
