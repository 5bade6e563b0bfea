"""Several pipeline processes on one GPU instance, each with its own model session.

One Python process runs its per-image bookkeeping (queue and database round trips, post-processing,
hand-offs between threads) under one GIL. Decoding, resizing and inference release it, but what is
left caps one process at a few thousand images per second whatever the core count, which is less
than a data-centre GPU takes. So the GPU service runs ``CONTENTFN_GPU_PROCESSES`` pipelines side by
side: each claims, decodes, batches, infers and writes on its own, and they share the GPU (one CUDA
context and one ONNX Runtime session each; batches from several processes keep it busy).

The instance's in-flight batches (``CONTENTFN_GPU_MAX_IN_FLIGHT``) are split between the processes,
so the cap Terraform sets, instances x max_batch x max_in_flight images, does not change.

The parent process supervises: it serves /healthz and /metrics for all of them (one series per
process), restarts a pipeline that died (its leased jobs come back when their lease ends), and on
SIGTERM asks each to drain. A pipeline whose parent vanished (SIGKILL) drains on its own.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from infra.gpu_worker.device import DeviceAddress, RemoteDetector, device_usage, serve_device
from infra.gpu_worker.memory import keep_freed_memory
from infra.gpu_worker.metrics import prometheus_text
from shared.config import Settings
from shared.queue.base import JobSource
from shared.services import Services
from shared.vision.store import DETECT_JOB

__all__ = ["WorkerPool", "auto_processes", "default_processes", "in_flight_shares"]

log = logging.getLogger(__name__)

_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
_REPORT_S = 0.5  # how often a pipeline sends its figures
_RESTART_BACKOFF_S = (1.0, 30.0)
_STABLE_S = 60.0  # a pipeline up this long has its restart backoff reset


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_processes(settings: Settings) -> int:
    """``CONTENTFN_GPU_PROCESSES``, or when 0: one per four cores on a GPU host, one on CPU.

    On CPU one process already keeps every core busy inside the model. Each process needs two
    batches in flight to overlap decoding with inference, so the automatic count is at most half
    the in-flight batches; an explicit count only never exceeds them (they are split, not added).
    """
    if settings.gpu_processes:
        return max(1, min(settings.gpu_processes, settings.gpu_max_in_flight))
    import onnxruntime as ort

    requested = settings.detector_providers or tuple(ort.get_available_providers())
    wanted = default_processes(any(p in _GPU_PROVIDERS for p in requested))
    return max(1, min(wanted, settings.gpu_max_in_flight // 2))


def default_processes(on_gpu: bool) -> int:
    return max(1, cpu_count() // 4) if on_gpu else 1


def in_flight_shares(in_flight: int, processes: int) -> list[int]:
    """Split ``in_flight`` batches between ``processes`` as evenly as whole batches allow."""
    base, extra = divmod(in_flight, processes)
    return [base + (1 if k < extra else 0) for k in range(processes)]


def _device_main(settings: Settings, address: DeviceAddress, ready: Connection) -> None:
    """The device process (``CONTENTFN_GPU_DEVICE_PROCESS``): the only session, ``gpu_device_calls`` calls at once."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s [device] %(name)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve_device(settings, address, ready)


def _child_main(
    index: int, settings: Settings, conn: Connection, streams: bool, device: DeviceAddress | None = None
) -> None:
    """One pipeline process: a GpuWorker (and, in process 0, the stream supervisor)."""
    from infra.gpu_worker.stream_runner import StreamSupervisor
    from infra.gpu_worker.wiring import detect_queue, worker_services
    from infra.gpu_worker.worker import GpuWorker

    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s %(levelname)s [p{index}] %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    keep_freed_memory(settings.gpu_malloc_keep_mib)
    services = worker_services(settings, migrate=False)
    worker = supervisor = detector = None
    try:
        detector = RemoteDetector(settings, device) if device is not None else None
        worker = GpuWorker(services, detector, queue=detect_queue(settings)).start()
        supervisor = StreamSupervisor(services, worker.detector, gate=worker.gate).start() if streams else None
        while not stop.is_set():
            conn.send({"health": worker.health(), "metrics": worker.metrics.snapshot(worker.max_batch)})
            if conn.poll(_REPORT_S) and conn.recv() == "stop":
                break
    except (EOFError, BrokenPipeError, ConnectionResetError):
        log.warning("the supervising process is gone; draining")
    finally:
        if supervisor is not None:
            supervisor.stop()
        if worker is not None:
            worker.stop()
        if isinstance(detector, RemoteDetector):
            detector.close()
        services.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
            conn.send({"stopped": True})


@dataclass
class _Backoff:
    """Restarts of one supervised process: 1 s after its first exit, doubling up to 30 s."""

    restarts: int = 0
    next_start: float = 0.0  # 0: no restart scheduled

    def due(self, now: float, what: str, exitcode: Any) -> bool:
        """Called while the process is dead: the first call schedules its restart, and the call
        at or after that time says it is due (and counts it)."""
        if self.next_start == 0.0:
            delay = min(_RESTART_BACKOFF_S[1], _RESTART_BACKOFF_S[0] * 2**self.restarts)
            log.error("%s exited with %s; restarting it in %.0f s", what, exitcode, delay)
            self.next_start = now + delay
            return False
        if now < self.next_start:
            return False
        self.restarts += 1
        self.next_start = 0.0
        return True


@dataclass
class _Child:
    index: int
    settings: Settings
    streams: bool
    process: Any = None
    conn: Connection | None = None
    last: dict[str, Any] = field(default_factory=dict)
    seen: float = 0.0
    backoff: _Backoff = field(default_factory=_Backoff)
    spawned_at: float = 0.0


class WorkerPool:
    """``start()``/``stop()``, plus ``health()`` and ``prometheus()`` for the HTTP server."""

    def __init__(
        self,
        services: Services,
        processes: int,
        *,
        streams: bool = True,
        queue: JobSource | None = None,
        grace_s: float | None = None,
    ) -> None:
        s = services.settings
        self.services = services  # the parent's own: queue depth and lag for /metrics
        self.queue: JobSource = queue if queue is not None else services.queue
        self.grace_s = s.gpu_grace_s if grace_s is None else grace_s
        shares = in_flight_shares(s.gpu_max_in_flight, processes)
        threads = s.gpu_decode_threads or max(2, cpu_count() // processes)
        self.children = [
            _Child(
                k, s.model_copy(update={"gpu_max_in_flight": share, "gpu_decode_threads": threads}), streams and k == 0
            )
            for k, share in enumerate(shares)
        ]
        self._ctx = mp.get_context("spawn")  # CUDA cannot be used in a forked child
        # With a device process, it alone opens the model on the GPU (see device.py).
        self.device_address = DeviceAddress.fresh() if s.gpu_device_process else None
        self.device_process: Any = None
        self._device_backoff = _Backoff()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name="gpu-pool", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, *, ready_timeout_s: float = 600.0) -> WorkerPool:
        """Start every pipeline and wait until each has reported once (its model is loaded)."""
        end = time.monotonic() + ready_timeout_s
        if self.device_address is not None:
            self._spawn_device(ready_timeout_s)
        for child in self.children:
            self._spawn(child)
        while not all(c.last for c in self.children):
            self._collect()
            dead = [c for c in self.children if not c.last and not c.process.is_alive()]
            if dead:
                self.stop()
                raise RuntimeError(f"GPU pipeline process {dead[0].index} exited with {dead[0].process.exitcode}")
            if time.monotonic() > end:
                self.stop()
                raise TimeoutError(f"GPU pipeline processes not ready within {ready_timeout_s:.0f} s")
            time.sleep(0.05)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask every pipeline to drain (finish or release in-flight work within the grace period)."""
        self._stopping.set()
        for child in self.children:
            if child.conn is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
                    child.conn.send("stop")
        end = time.monotonic() + self.grace_s + 15.0
        for child in self.children:
            if child.process is None:
                continue
            child.process.join(max(0.1, end - time.monotonic()))
            if child.process.is_alive():
                log.error("pipeline %d did not stop within the grace period; terminating it", child.index)
                child.process.terminate()
                child.process.join(5.0)
        if self._thread.is_alive():
            self._thread.join(5.0)
        if self.device_process is not None:  # after the pipelines: their last calls go through it
            self.device_process.terminate()
            self.device_process.join(10.0)
        if self.device_address is not None:
            Path(self.device_address.path).unlink(missing_ok=True)

    def _spawn_device(self, timeout_s: float) -> None:
        ready, ready_child = self._ctx.Pipe(duplex=False)
        self.device_process = self._ctx.Process(
            target=_device_main,
            args=(self.services.settings, self.device_address, ready_child),
            name="gpu-device",
            daemon=True,
        )
        self.device_process.start()
        ready_child.close()
        try:
            if not ready.poll(timeout_s):
                raise TimeoutError(f"the GPU device process was not ready within {timeout_s:.0f} s")
            info = ready.recv()
        except EOFError:
            raise RuntimeError(
                f"the GPU device process exited with {self.device_process.exitcode} before it was ready"
            ) from None
        finally:
            ready.close()
        log.info("GPU device process up: %s", info)

    def _restart_device(self, now: float) -> None:
        proc = self.device_process
        if self.device_address is None or proc is None or proc.is_alive() or self._stopping.is_set():
            return
        if self._device_backoff.due(now, "the GPU device process", proc.exitcode):
            try:
                self._spawn_device(600.0)  # the pipelines' calls fail meanwhile, and their jobs are retried
            except (RuntimeError, TimeoutError):
                log.exception("the GPU device process did not come back")

    def _spawn(self, child: _Child) -> None:
        parent_end, child_end = self._ctx.Pipe()
        child.process = self._ctx.Process(
            target=_child_main,
            args=(child.index, child.settings, child_end, child.streams, self.device_address),
            name=f"gpu-pipeline-{child.index}",
            daemon=True,
        )
        child.process.start()
        child_end.close()
        child.conn = parent_end
        child.last, child.seen, child.spawned_at = {}, 0.0, time.monotonic()

    def _collect(self) -> None:
        for child in self.children:
            conn = child.conn
            try:
                while conn is not None and conn.poll():
                    message = conn.recv()
                    if "health" in message:
                        with self._lock:
                            child.last, child.seen = message, time.monotonic()
            except (EOFError, OSError):
                child.conn = None

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                self._collect()
                self._restart_device(time.monotonic())
                self._restart_dead()
            except Exception:  # the supervisor must outlive whatever one pass meets
                log.exception("GPU pipeline supervision pass failed")
            self._stopping.wait(_REPORT_S / 2)

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if self._stopping.is_set():
                return
            if child.process.is_alive():
                if child.backoff.restarts and now - child.spawned_at > _STABLE_S:
                    child.backoff.restarts = 0  # it has run well since: the next failure restarts it quickly
                continue
            with self._lock:
                child.last = {}
            what = f"pipeline {child.index}, whose leased jobs return when their lease ends,"
            if child.backoff.due(now, what, child.process.exitcode):
                self._spawn(child)

    # -- observing ---------------------------------------------------------------------------
    def snapshots(self) -> dict[int, dict[str, Any]]:
        """Each pipeline's latest figures (``WorkerMetrics.snapshot``), as last reported (≤ 0.5 s old)."""
        self._collect()
        with self._lock:
            return {c.index: dict(c.last["metrics"]) for c in self.children if c.last}

    def health(self) -> dict[str, Any]:
        with self._lock:
            up = {c.index: c.last["health"] for c in self.children if c.last and time.monotonic() - c.seen < 10.0}
        first: dict[str, Any] = next(iter(up.values()), {})
        status = "draining" if self._stopping.is_set() else ("ok" if up else "down")
        return {
            **first,
            "status": status,
            "processes": len(self.children),
            "processes_up": len(up),
            **self._device_health(),
            "in_flight": sum(h.get("in_flight", 0) for h in up.values()),
            "drain_img_per_s": sum(h.get("drain_img_per_s") or 0.0 for h in up.values()) or None,
            "max_in_flight_images": sum(c.settings.gpu_max_in_flight for c in self.children)
            * first.get("max_batch", 0),
        }

    def _device_health(self) -> dict[str, Any]:
        proc = self.device_process
        if proc is None:
            return {}
        health = {"device_process": "up" if proc.is_alive() else "down", "device_pid": proc.pid}
        usage = self.device_usage() if proc.is_alive() else None
        if usage is not None:
            health |= {
                "device_calls": usage["calls"],
                "device_busy_s": round(usage["busy_s"], 3),
                "device_buffers": usage["blocks"],
                "device_buffers_page_locked": usage["pinned_blocks"],
                # calls of another batch size than the one before (on a GPU: 0 but the warm-up)
                "device_shape_changes": usage["shape_changes"],
            }
        return health

    def pids(self) -> tuple[list[int], int | None]:
        """The live pipeline processes' pids, and the device process's (None without one)."""
        with self._lock:
            pipelines = [c.process.pid for c in self.children if c.process is not None and c.process.is_alive()]
        device = self.device_process.pid if self.device_process is not None else None
        return pipelines, device

    def device_usage(self) -> dict[str, Any] | None:
        """The device process's calls, images and busy seconds since it started; None without one."""
        if self.device_address is None:
            return None
        return device_usage(self.device_address)

    def prometheus(self) -> str:
        from infra.gpu_worker.wiring import queue_figures

        with self._lock:
            snaps = {str(c.index): c.last["metrics"] for c in self.children if c.last}
            first: dict[str, Any] = next((c.last["health"] for c in self.children if c.last), {})
        depth, lag = queue_figures(self.services, self.queue, DETECT_JOB)
        return prometheus_text(
            snaps,
            provider=first.get("provider", "unknown"),
            model=first.get("model", "unknown"),
            queue_depth=depth,
            queue_lag_s=lag,
            device=self.device_usage(),
        )
