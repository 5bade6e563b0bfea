"""Counters of one worker process, and their Prometheus text form."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["WorkerMetrics"]


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
    started: float = field(default_factory=time.monotonic)
    _window: deque[tuple[float, int]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_in_flight(self, n: int) -> None:
        with self._lock:
            self.in_flight += n
            self.in_flight_peak = max(self.in_flight_peak, self.in_flight)

    def record_batch(self, size: int, seconds: float) -> None:
        with self._lock:
            self.batches += 1
            self.batch_images += size
            self.infer_seconds += seconds

    def record_written(self, done: int, rejected: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.images_done += done
            self.images_rejected += rejected
            self._window.append((now, done + rejected))
            while self._window and self._window[0][0] < now - 30.0:
                self._window.popleft()

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def images_per_s(self) -> float:
        """Images written per second over the last 30 s (or since start)."""
        now = time.monotonic()
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
            return min(1.0, self.infer_seconds / max(time.monotonic() - self.started, 1e-3))

    def prometheus(self, *, provider: str, model: str, max_batch: int, queue_depth: int, queue_lag_s: float) -> str:
        labels = f'provider="{provider}",model="{model}"'
        lines = [
            "# TYPE contentfn_gpu_images_total counter",
            f'contentfn_gpu_images_total{{outcome="done",{labels}}} {self.images_done}',
            f'contentfn_gpu_images_total{{outcome="rejected",{labels}}} {self.images_rejected}',
            f'contentfn_gpu_images_total{{outcome="failed",{labels}}} {self.images_failed}',
            f'contentfn_gpu_images_total{{outcome="released",{labels}}} {self.images_released}',
            "# TYPE contentfn_gpu_batches_total counter",
            f"contentfn_gpu_batches_total{{{labels}}} {self.batches}",
            "# TYPE contentfn_gpu_batch_fill gauge",
            f"contentfn_gpu_batch_fill{{{labels}}} {self.batch_fill(max_batch):.4f}",
            "# TYPE contentfn_gpu_images_per_second gauge",
            f"contentfn_gpu_images_per_second{{{labels}}} {self.images_per_s():.3f}",
            "# TYPE contentfn_gpu_busy_ratio gauge",
            f"contentfn_gpu_busy_ratio{{{labels}}} {self.gpu_busy():.4f}",
            "# TYPE contentfn_gpu_in_flight gauge",
            f"contentfn_gpu_in_flight{{{labels}}} {self.in_flight}",
            "# TYPE contentfn_gpu_queue_depth gauge",
            f"contentfn_gpu_queue_depth {queue_depth}",
            "# TYPE contentfn_gpu_queue_lag_seconds gauge",
            f"contentfn_gpu_queue_lag_seconds {queue_lag_s:.3f}",
        ]
        return "\n".join(lines) + "\n"
