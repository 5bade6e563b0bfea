"""Counters of one worker process, and the Prometheus exposition of one or several of them
(``prometheus_client``: a collector over snapshots, so a supervising process can serve its pipelines'
figures without sharing memory with them)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["STAGES", "WorkerMetrics", "prometheus_text"]

# Where an image's time goes, in pipeline order (each a counter of seconds, summed over threads):
# claim (queue round trips), read (object store), decode (safe decode + letterbox into a batch row),
# row_wait (a decoded image waiting for a batch row: every batch buffer is full or running), gather
# (a batch thread waiting for a batch to be ready), turn (waiting for the GPU gate: another call is
# running), infer (the model call, transfers included), postprocess (thresholds, NMS, mapping boxes
# back) and write (the transaction that stores results and acks).
STAGES = ("claim", "read", "decode", "row_wait", "gather", "turn", "infer", "postprocess", "write")


@dataclass
class WorkerMetrics:
    """Updated by the worker's threads under one lock; read by /metrics and /healthz."""

    images_done: int = 0
    images_rejected: int = 0
    images_failed: int = 0
    images_released: int = 0
    batches: int = 0
    batch_images: int = 0
    infer_seconds: float = 0.0
    in_flight: int = 0
    in_flight_peak: int = 0
    # Seconds spent in each pipeline stage, summed over the threads that ran it (see STAGES).
    stage_seconds: dict[str, float] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    started: float = -1.0
    # Backlogged: the last claim got all it asked for, so the worker, not the queue, sets the pace.
    # Images written and seconds spent while backlogged give the rate the worker drains at.
    backlogged: bool = False
    busy_images: int = 0
    _busy_s: float = 0.0
    _busy_since: float = 0.0
    _rate_samples: deque[tuple[float, float, int]] = field(default_factory=deque)
    _window: deque[tuple[float, int]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()
        self._rate_samples.append((self.started, 0.0, 0))

    def set_backlogged(self, flag: bool) -> None:
        now = self.clock()
        with self._lock:
            if self.backlogged:
                self._busy_s += now - self._busy_since
            self.backlogged, self._busy_since = flag, now

    def busy_s(self) -> float:
        with self._lock:
            return self._busy_s + (self.clock() - self._busy_since if self.backlogged else 0.0)

    def drain_rate(self, *, min_busy_s: float = 10.0, horizon_s: float = 300.0) -> float | None:
        """Images per second written while backlogged, over about the last ``horizon_s``; None until
        the worker has been backlogged for ``min_busy_s`` in that span (an idle worker's rate says
        nothing about what it can drain). Each call also records a sample: call it periodically."""
        now, busy = self.clock(), self.busy_s()
        with self._lock:
            samples = self._rate_samples
            samples.append((now, busy, self.busy_images))
            while len(samples) > 1 and samples[1][0] <= now - horizon_s:
                samples.popleft()  # the oldest left is the baseline, at or just before the horizon
            _, busy0, images0 = samples[0]
            seconds, images = busy - busy0, self.busy_images - images0
        return images / seconds if seconds >= min_busy_s else None

    def add_in_flight(self, n: int) -> None:
        with self._lock:
            self.in_flight += n
            self.in_flight_peak = max(self.in_flight_peak, self.in_flight)

    def record_batch(self, size: int, seconds: float) -> None:
        with self._lock:
            self.batches += 1
            self.batch_images += size
            self.infer_seconds += seconds

    def add_stage(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def record_written(self, done: int, rejected: int) -> None:
        now = self.clock()
        with self._lock:
            self.images_done += done
            self.images_rejected += rejected
            if self.backlogged:
                self.busy_images += done + rejected
            self._window.append((now, done + rejected))
            while self._window and self._window[0][0] < now - 30.0:
                self._window.popleft()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def images_per_s(self) -> float:
        """Images written per second over the last 30 s (or since start)."""
        now = self.clock()
        with self._lock:
            n = sum(k for _, k in self._window)
            span = min(30.0, max(now - self.started, 1e-3))
        return n / span

    def batch_fill(self, max_batch: int) -> float:
        with self._lock:
            return self.batch_images / (self.batches * max_batch) if self.batches else 0.0

    def gpu_busy(self) -> float:
        """Fraction of wall time spent inside the model since start."""
        with self._lock:
            return min(1.0, self.infer_seconds / max(self.clock() - self.started, 1e-3))

    def snapshot(self, max_batch: int) -> dict[str, float]:
        """Every figure /metrics shows, as plain numbers (sent from pipeline processes to their parent)."""
        with self._lock:
            counts = {
                "images_done": self.images_done,
                "images_rejected": self.images_rejected,
                "images_failed": self.images_failed,
                "images_released": self.images_released,
                "batches": self.batches,
                "in_flight": self.in_flight,
            }
            stages = {f"stage_{k}_s": v for k, v in self.stage_seconds.items()}
        return {
            **counts,
            **stages,
            "batch_fill": self.batch_fill(max_batch),
            "images_per_s": self.images_per_s(),
            "gpu_busy": self.gpu_busy(),
        }

    def prometheus(self, *, provider: str, model: str, max_batch: int, queue_depth: int, queue_lag_s: float) -> str:
        return prometheus_text(
            {"0": self.snapshot(max_batch)},
            provider=provider,
            model=model,
            queue_depth=queue_depth,
            queue_lag_s=queue_lag_s,
        )


# Families: (name, help, snapshot keys by outcome label, or one key). Counters are named without
# "_total": the client adds it.
_COUNTERS: tuple[tuple[str, str, dict[str, str] | str], ...] = (
    (
        "contentfn_gpu_images",
        "Images settled, by outcome (done, rejected, failed, released back to the queue).",
        {
            "done": "images_done",
            "rejected": "images_rejected",
            "failed": "images_failed",
            "released": "images_released",
        },
    ),
    ("contentfn_gpu_batches", "Model calls on image batches.", "batches"),
)
_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("contentfn_gpu_batch_fill", "Mean batch size over the batch cap.", "batch_fill"),
    ("contentfn_gpu_images_per_second", "Images written per second over the last 30 s.", "images_per_s"),
    ("contentfn_gpu_busy_ratio", "Share of wall time inside the model.", "gpu_busy"),
    ("contentfn_gpu_in_flight", "Images held now (decoding, queued for the model, being written).", "in_flight"),
)
_LABELS = ["process", "provider", "model"]


@dataclass(eq=False)  # the registry keeps collectors in a dict: hashed by identity
class _Snapshots:
    """A prometheus_client collector over figures already gathered (one snapshot per process)."""

    processes: dict[str, dict[str, Any]]
    provider: str
    model: str
    queue_depth: int
    queue_lag_s: float
    device: dict[str, Any] | None = None

    def collect(self) -> Iterator[Metric]:
        for name, help_text, keys in _COUNTERS:
            by_outcome = isinstance(keys, dict)
            family = CounterMetricFamily(name, help_text, labels=(["outcome"] if by_outcome else []) + _LABELS)
            for process, snap in self.processes.items():
                labels = [process, self.provider, self.model]
                if isinstance(keys, dict):
                    for outcome, key in keys.items():
                        family.add_metric([outcome, *labels], snap.get(key, 0))
                else:
                    family.add_metric(labels, snap.get(keys, 0))
            yield family
        stages = CounterMetricFamily(
            "contentfn_gpu_stage_seconds",
            "Seconds spent per pipeline stage, summed over the threads running it: " + ", ".join(STAGES) + ".",
            labels=["stage", *_LABELS],
        )
        for process, snap in self.processes.items():
            for stage in STAGES:
                stages.add_metric([stage, process, self.provider, self.model], snap.get(f"stage_{stage}_s", 0.0))
        yield stages
        for name, help_text, key in _GAUGES:
            gauge = GaugeMetricFamily(name, help_text, labels=_LABELS)
            for process, snap in self.processes.items():
                gauge.add_metric([process, self.provider, self.model], snap.get(key, 0))
            yield gauge
        yield GaugeMetricFamily(
            "contentfn_gpu_queue_depth", "Detection jobs waiting (-1: the queue does not tell).", value=self.queue_depth
        )
        yield GaugeMetricFamily(
            "contentfn_gpu_queue_lag_seconds",
            "Age of the oldest waiting detection job (-1: unknown for this queue).",
            value=self.queue_lag_s,
        )
        if self.device is not None:  # the device process (CONTENTFN_GPU_DEVICE_PROCESS), since it started
            labels = ["provider", "model"]
            for name, help_text, key in (
                ("contentfn_gpu_device_calls", "Model calls the device process has run.", "calls"),
                ("contentfn_gpu_device_images", "Images through the device process's model calls.", "images"),
                (
                    "contentfn_gpu_device_busy_seconds",
                    "Seconds the device process had at least one model call running.",
                    "busy_s",
                ),
                (
                    "contentfn_gpu_device_shape_changes",
                    "Model calls of another batch size than the call before (each is slow on a GPU session).",
                    "shape_changes",
                ),
            ):
                family = CounterMetricFamily(name, help_text, labels=labels)
                family.add_metric([self.provider, self.model], self.device.get(key, 0))
                yield family


def prometheus_text(
    processes: dict[str, dict[str, Any]],
    *,
    provider: str,
    model: str,
    queue_depth: int,
    queue_lag_s: float,
    device: dict[str, Any] | None = None,
) -> str:
    """One family per metric, one series per pipeline process (label ``process``); sum them in queries.
    ``device``: the device process's usage (``device_usage``), when there is one."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshots(processes, provider, model, queue_depth, queue_lag_s, device))
    return generate_latest(registry).decode()
