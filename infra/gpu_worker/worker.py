"""The image detection worker: bounded in-flight, micro-batches, ack only after the write commits.

Pipeline (one process, threads):

    claimer ──claim(≤ room)──► decode pool (safe decode, letterbox into a batch row) ──► batch ──run──► writer
       ▲                                                                                        │
       └────────────────── permits: max_in_flight batches x max_batch images ◄──────────────────┘

- The claimer holds one permit per claimed job and claims only while permits are free, so memory
  is bounded by the cap whatever the backlog: extra work waits in the queue (backpressure).
- Each decoded image is letterboxed straight into a row of the batch being filled (slots.py). A
  batch runs once it is full or ``max_wait_ms`` after its first image; items past their deadline go
  back to the queue instead of being run late.
- The writer replaces each image's detections, marks it, records the ledger and acks the jobs in
  one transaction (writer.py). A crash before the commit leaves every job leased and nothing
  written: the lease expires and the job runs again. A crash after the commit leaves nothing to redo.

What the process is wired to (its queue, object store and services) is chosen in wiring.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as queue_mod
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from infra.gpu_worker.device import DeviceUnavailable
from infra.gpu_worker.gate import GpuGate
from infra.gpu_worker.memory import kept_mib
from infra.gpu_worker.metrics import WorkerMetrics
from infra.gpu_worker.slots import Slab, SlotBatcher
from infra.gpu_worker.wiring import queue_figures
from infra.gpu_worker.writer import ImageBatch, ImageItem, ResultWriter
from shared.errors import PoisonError
from shared.observability import job_span
from shared.queue.base import JobSource
from shared.queue.kinds import DetectPayload, MalformedPayload
from shared.services import Services
from shared.vision.capacity import forget_worker, report_worker
from shared.vision.decode import ImageRejected, decode_image
from shared.vision.detector import Detector, load_detector
from shared.vision.sessions import batch_sizes, padded_size
from shared.vision.store import DETECT_JOB, ImageResult

__all__ = ["GpuWorker"]

log = logging.getLogger(__name__)


class GpuWorker:
    """Run with ``start()``/``stop()`` (threads), or ``run_until(event)`` in a process of its own."""

    def __init__(
        self,
        services: Services,
        detector: Detector | None = None,
        *,
        queue: JobSource | None = None,
        infer_threads: int = 0,
    ) -> None:
        s = services.settings
        self.services = services
        self.detector = detector or load_detector(s)
        self.queue: JobSource = queue if queue is not None else services.queue
        self.metrics = WorkerMetrics()
        # Results and acks: in one transaction on the Postgres queue, right after it on a cloud one.
        self.writer = ResultWriter(services.db, self.queue, self.detector.name, self.metrics)
        self.max_batch = min(s.gpu_max_batch, self.detector.static_batch or s.gpu_max_batch)
        # Optionally, model calls take turns on the device with the instance's other pipeline
        # processes and threads (gate.py).
        self.gate = GpuGate(s.data_dir / "gpu-gate", s.gpu_concurrent_calls) if s.gpu_concurrent_calls else None
        self.permits = s.gpu_max_in_flight * self.max_batch
        self.max_wait_s = s.gpu_max_wait_ms / 1000
        self.visibility_s = s.queue_visibility_s
        # An item must be written well before its lease ends, or another worker may take it too.
        self.deadline_s = min(s.gpu_item_deadline_s, 0.8 * s.queue_visibility_s)
        self.stopping = threading.Event()  # stop claiming
        self._halt = threading.Event()  # stop everything (grace over)
        self._room = threading.Condition()
        self._free = self.permits
        self._outstanding: dict[str, ImageItem] = {}
        self._local = threading.local()  # each inference thread's output buffer
        self._buffers: list[np.ndarray] = []  # every host buffer (page-locked on a GPU until stop)
        self._slots: SlotBatcher | None = None  # made at start: the batch buffers decoding writes into
        self._unrun: queue_mod.Queue[ImageItem] = queue_mod.Queue()  # refused or failed before a batch row
        self._to_write: queue_mod.Queue[ImageBatch | None] = queue_mod.Queue(maxsize=max(1, s.gpu_max_in_flight))
        threads = s.gpu_decode_threads or (os.cpu_count() or 2)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gpu-decode")
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.report_s = 5.0
        self.min_busy_s = 10.0
        self.last_rate: float | None = None
        # One model-calling thread per process by default. On the H100 measured here, two threads
        # each calling the model while decode threads ran made every call several times slower
        # (four processes: 1,173 images/s with one thread each, 451 with two), then with batch sizes
        # changing between calls and both threads on one session (see shared.vision.sessions: both
        # since fixed, not measured again); more processes, or the device process, are how an
        # instance overlaps its calls. On CPU one call already uses every core.
        self.infer_threads = infer_threads or s.gpu_infer_threads
        self._threads = self._pipeline_threads()
        # On a GPU a session must see one input shape (see shared.vision.sessions): partial batches
        # are padded to the full batch size, which is run once at start (its first run picks the
        # kernels).
        self.buckets = batch_sizes(self.max_batch) if self.detector.on_gpu else ()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> GpuWorker:
        # One batch buffer per batch that may be in flight, and one more to fill while they run.
        size = self.detector.input_size
        slabs = max(self.services.settings.gpu_max_in_flight, self.infer_threads) + 1
        buffers = [self.detector.host_buffer((self.max_batch, size, size, 3)) for _ in range(slabs)]
        self._buffers.extend(buffers)
        self._slots = SlotBatcher(buffers, self.max_wait_s)
        for rows in self.buckets:
            buffers[0][:rows] = 0
            self.detector.run_raw(buffers[0][:rows])
        if self.infer_threads > 1:  # a session per model-calling thread (shared.vision.sessions), warmed
            self.detector.warm(self.buckets, per_size=self.infer_threads)
        self.report()
        for t in self._threads:
            t.start()
        return self

    def stop(self, grace_s: float | None = None) -> None:
        """Stop claiming; finish in-flight work within the grace period, then release the rest."""
        grace = self.services.settings.gpu_grace_s if grace_s is None else grace_s
        self.stopping.set()
        end = time.monotonic() + grace
        with self._room:
            while self._free < self.permits and time.monotonic() < end:
                self._room.wait(0.05)
        self._halt.set()
        for t in self._threads:
            t.join(10.0)
        self._pool.shutdown(wait=True, cancel_futures=True)
        while self._buffers:
            self.detector.release_buffer(self._buffers.pop())
        self._forget()
        leftover = [i.claimed for i in self._outstanding.values()]
        if leftover:
            released = self.queue.release(leftover)
            self.metrics.count("images_released", released)
            log.info("released %d in-flight images back to the queue", released)

    def run_until(self, stop: threading.Event) -> None:
        self.start()
        stop.wait()
        self.stop()

    def _pipeline_threads(self) -> list[threading.Thread]:
        loops = [("gpu-claim", self._claim_loop), ("gpu-report", self._report_loop)]
        # As many writers as inference threads: post-processing and the database round trips of
        # one batch overlap those of the next (their images, jobs and ledger rows are disjoint).
        for i in range(self.infer_threads):
            loops += [(f"gpu-batch-{i}", self._batch_loop), (f"gpu-write-{i}", self._write_loop)]
        return [threading.Thread(target=self._guard(loop), name=name, daemon=True) for name, loop in loops]

    @property
    def in_flight(self) -> int:
        return self.permits - self._free

    def _guard(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self._halt.is_set():
                try:
                    loop()
                    return
                except Exception:
                    log.exception("%s failed; restarting it", threading.current_thread().name)
                    self._halt.wait(1.0)

        return run

    # -- reporting the drain rate ---------------------------------------------------------------
    def _report_loop(self) -> None:
        while not self._halt.wait(self.report_s):
            self.report()

    def report(self) -> float | None:
        """Tell the fleet table what this process drains (admission counts on it); never raises."""
        rate = self.last_rate = self.metrics.drain_rate(min_busy_s=self.min_busy_s)
        try:
            with self.services.db.connection() as conn:
                report_worker(
                    conn,
                    self.worker_id,
                    host=socket.gethostname(),
                    provider=self.detector.provider,
                    model=self.detector.name,
                    max_batch=self.max_batch,
                    img_per_s=rate,
                    busy_s=self.metrics.busy_s(),
                )
                conn.commit()
        except Exception as exc:  # admission falls back to the configured rate; detection goes on
            log.warning("could not report the drain rate: %s: %s", type(exc).__name__, exc)
        return rate

    def _forget(self) -> None:
        try:
            with self.services.db.connection() as conn:
                forget_worker(conn, self.worker_id)
                conn.commit()
        except Exception as exc:
            log.warning("could not remove this worker's row: %s: %s", type(exc).__name__, exc)

    # -- claim + decode ----------------------------------------------------------------------
    def _claim_loop(self) -> None:
        poll = self.services.settings.worker_poll_s
        while not self.stopping.is_set():
            with self._room:
                while self._free == 0 and not self.stopping.is_set():
                    self._room.wait(0.1)
                room = self._free
            if self.stopping.is_set():
                return
            asked = min(room, self.max_batch)
            t0 = time.perf_counter()
            claimed = self.queue.claim(DETECT_JOB, asked, visibility_s=self.visibility_s)
            self.metrics.add_stage("claim", time.perf_counter() - t0)
            # Got all it asked for: a backlog, not the queue, sets the pace (see metrics.drain_rate).
            self.metrics.set_backlogged(len(claimed) == asked)
            if not claimed:
                self.stopping.wait(poll)
                continue
            deadline = time.monotonic() + self.deadline_s
            with self._room:
                self._free -= len(claimed)
            self.metrics.add_in_flight(len(claimed))
            for c in claimed:
                item = ImageItem(c, deadline)
                self._outstanding[c.id] = item
                self._pool.submit(self._decode, item)

    def _decode(self, item: ImageItem) -> None:
        s = self.services.settings
        try:
            payload = item.payload = DetectPayload.from_job(item.claimed.job)
        except MalformedPayload as exc:
            item.error, item.poison = str(exc), True
            self._unrun.put(item)
            return
        slot: tuple[Slab, int] | None = None
        try:
            t0 = time.perf_counter()
            with self.services.blob.open(payload.bucket, payload.key, max_bytes=s.image_max_bytes) as f:
                data = f.read(s.image_max_bytes + 1)
            t1 = time.perf_counter()
            image = decode_image(
                data, max_bytes=s.image_max_bytes, max_pixels=s.image_max_pixels, draft_to=self.detector.input_size
            )
            t2 = time.perf_counter()
            assert self._slots is not None
            slot = self._slots.take_row(self._halt)
            if slot is None:  # halting: the item is still outstanding and goes back to the queue
                return
            t3 = time.perf_counter()
            slab, row = slot
            item.prepared = self.detector.prepare(image, into=slab.buffer[row])
            item.fmt = image.format
            self._slots.fill(slab, row, item)
            self.metrics.add_stage("read", t1 - t0)
            self.metrics.add_stage("decode", t2 - t1 + time.perf_counter() - t3)
            self.metrics.add_stage("row_wait", t3 - t2)
            return
        except ImageRejected as exc:
            item.rejected = ImageResult(item.image_id, rejected=f"{exc.reason}: {exc}")
        except PoisonError as exc:  # the object vanished or grew past the cap since ingest
            item.rejected = ImageResult(item.image_id, rejected=f"unreadable: {exc}")
        except Exception as exc:
            item.error = f"{type(exc).__name__}: {exc}"
        if slot is not None:  # the row stays unused; the rest of its batch runs
            item.prepared = None
            assert self._slots is not None
            self._slots.fill(slot[0], slot[1], None)
        self._unrun.put(item)

    # -- batch + infer -----------------------------------------------------------------------
    def _batch_loop(self) -> None:
        assert self._slots is not None
        while not self._halt.is_set():
            gathering = time.perf_counter()
            slab = self._slots.next_ready(timeout_s=max(self.max_wait_s, 0.1))
            unrun = self._take_unrun()
            if slab is None:
                if unrun:  # refused images are written (and acked) without waiting for a batch
                    self._to_write.put(ImageBatch(unrun))
                continue
            self.metrics.add_stage("gather", time.perf_counter() - gathering)
            try:
                batch = self._run_slab(slab)
            finally:
                self._slots.give_back(slab)
            batch.items.extend(unrun)
            if batch.items:
                self._to_write.put(batch)

    def _take_unrun(self) -> list[ImageItem]:
        items = []
        while True:
            try:
                items.append(self._unrun.get_nowait())
            except queue_mod.Empty:
                return items

    def _run_slab(self, slab: Slab) -> ImageBatch:
        """Run the model over a ready slab's rows; the slab may be reused once this returns."""
        filled: list[tuple[int, ImageItem]] = slab.rows()
        now = time.monotonic()
        late = [item for _, item in filled if now > item.deadline]
        if late:
            log.warning("releasing %d images that missed their deadline", len(late))
            self._release(late)
            filled = [(row, item) for row, item in filled if now <= item.deadline]
        batch = ImageBatch([item for _, item in filled])
        if not filled:
            return batch
        try:
            jobs = [item.claimed.job for item in batch.items]
            with job_span("detect batch", jobs, attributes={"batch.images": len(filled), "batch.max": self.max_batch}):
                log.debug("detection batch of %d images", len(filled), extra={"jobs": [j.id for j in jobs]})
                self._run(batch, slab, [row for row, _ in filled])
        except DeviceUnavailable as exc:
            # Not the images' fault: back to the queue without using up an attempt, and a pause
            # while the device process comes back.
            log.warning("%s; releasing %d images back to the queue", exc, len(batch.items))
            self._release(batch.items)
            self._halt.wait(1.0)
            return ImageBatch([])
        except Exception as exc:  # the device failed this batch: its jobs are retried, permits freed
            log.exception("model call on %d images failed; their jobs will be retried", len(batch.items))
            for item in batch.items:
                item.error = f"model call failed: {type(exc).__name__}: {exc}"
                item.prepared = None
        return batch

    def _run(self, batch: ImageBatch, slab: Slab, rows: list[int]) -> None:
        # Rows past the last one taken (up to the padded batch size) hold stale pixels, and rows
        # given up or released late are run too: their outputs are not read.
        pixels = slab.buffer[: padded_size(self.buckets, slab.taken)]
        out = self._output_buffer()
        t_turn = time.perf_counter()
        with self.gate.turn() if self.gate else contextlib.nullcontext():
            t1 = time.perf_counter()
            output = self.detector.run_raw(pixels, out=out)
            t2 = time.perf_counter()
        # Post-processed here, before this thread's next batch reuses the output buffer.
        dense = rows == list(range(len(rows)))
        runnable = [item.prepared for item in batch.items if item.prepared is not None]
        batch.found = self.detector.postprocess(output[: len(rows)] if dense else output[rows], runnable)
        self.metrics.add_stage("turn", t1 - t_turn)
        self.metrics.add_stage("infer", t2 - t1)
        self.metrics.add_stage("postprocess", time.perf_counter() - t2)
        self.metrics.record_batch(len(rows), t2 - t1)

    def _output_buffer(self) -> np.ndarray:
        out: np.ndarray | None = getattr(self._local, "out", None)
        if out is None:
            out = self._local.out = self.detector.output_buffer(self.max_batch)
            self._buffers.append(out)
        return out

    # -- write + ack -------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while not (self._halt.is_set() and self._to_write.empty()):
            try:
                batch = self._to_write.get(timeout=0.1)
            except queue_mod.Empty:
                continue
            if batch is not None:
                self._write(batch)

    def _write(self, batch: ImageBatch) -> None:
        self.writer.write(batch)
        self._finish(batch.items)

    def _release(self, items: list[ImageItem]) -> None:
        released = self.queue.release([i.claimed for i in items])
        self.metrics.count("images_released", released)
        self._finish(items)

    def _finish(self, items: list[ImageItem]) -> None:
        for i in items:
            self._outstanding.pop(i.claimed.id, None)
        self.metrics.add_in_flight(-len(items))
        with self._room:
            self._free += len(items)
            self._room.notify_all()

    # -- observing ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {
            "status": "draining" if self.stopping.is_set() else "ok",
            "provider": self.detector.provider,
            "on_gpu": self.detector.on_gpu,
            "model": self.detector.name,
            "layout": self.detector.layout,
            "input_size": self.detector.input_size,
            "precision": self.detector.spec.precision,
            "uint8_input": not self.detector.host_normalise,
            "max_batch": self.max_batch,
            "in_flight": self.in_flight,
            "max_in_flight_images": self.permits,
            "drain_img_per_s": None if self.last_rate is None else round(self.last_rate, 2),
            "malloc_keep_mib": kept_mib(),
        }

    def prometheus(self) -> str:
        depth, lag = queue_figures(self.services, self.queue, DETECT_JOB)
        return self.metrics.prometheus(
            provider=self.detector.provider,
            model=self.detector.name,
            max_batch=self.max_batch,
            queue_depth=depth,
            queue_lag_s=lag,
        )
