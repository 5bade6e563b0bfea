"""Dynamic batching across streams: frames of every stream a worker holds share model calls.

Each stream's runner hands over the frames it has (often one: a live camera at a few frames per
second), and one thread runs them together with other streams' frames, up to ``max_batch`` images
or ``max_wait_s`` after the first arrived, then gives each runner its own detections back. Fifty
cameras at 5 fps become batches of up to ``max_batch`` instead of 250 single-image calls per second,
which on a GPU is the difference between its batch-1 and its batch-64 throughput.

The batching thread letterboxes each frame straight into a row of one reused batch buffer (page-locked
on a GPU, mapped by the device process when there is one) and reads the answers from one reused
output buffer: no canvas per frame and no fresh batch array per call.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from infra.gpu_worker.gate import GpuGate
from shared.vision.decode import DecodedImage
from shared.vision.detector import Detection, Detector, Prepared
from shared.vision.sessions import batch_sizes, padded_size

__all__ = ["FrameBatcher"]

log = logging.getLogger(__name__)


@dataclass
class _Request:
    images: Sequence[DecodedImage]
    done: threading.Event = field(default_factory=threading.Event)
    result: list[list[Detection]] | None = None
    error: BaseException | None = None


class FrameBatcher:
    """Thread-safe ``detect(images)``, with the detector's ``name``: a drop-in for the detector."""

    def __init__(
        self,
        detector: Detector,
        *,
        max_batch: int,
        max_wait_s: float,
        timeout_s: float = 120.0,
        gate: GpuGate | None = None,
    ) -> None:
        self.detector = detector
        self.gate = gate  # the image pipelines' (CONTENTFN_GPU_CONCURRENT_CALLS): stream calls take turns too
        self.name = detector.name
        self.max_batch = max(1, min(max_batch, detector.static_batch or max_batch))
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        # On a GPU, padded to the full batch size (a session sees one input shape: see shared.vision.sessions).
        self.buckets = batch_sizes(self.max_batch) if detector.on_gpu else ()
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="stream-batcher", daemon=True)
        self._lock = threading.Lock()
        self.batches = 0
        self.frames = 0
        self.most_requests = 0  # the most runners' frames one model call served
        self._pixels: np.ndarray | None = None  # made and used by the batching thread only
        self._out: np.ndarray | None = None

    def start(self) -> FrameBatcher:
        # Stream batches run beside the image pipeline's on the same detector: on a GPU each call
        # at once needs a session of its own (see shared.vision.sessions), so a second one is opened and warmed
        # now rather than cold, mid-run, the first time the two overlap.
        self.detector.warm(self.buckets, per_size=2)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._requests.put(None)
        self._thread.join(10.0)
        if not self._thread.is_alive():
            for buffer in (self._pixels, self._out):
                if buffer is not None:
                    self.detector.release_buffer(buffer)
            self._pixels = self._out = None

    def detect(self, images: Sequence[DecodedImage]) -> list[list[Detection]]:
        if len(images) > self.max_batch:  # more than one batch holds: in turn, a batch at a time
            return [
                d for k in range(0, len(images), self.max_batch) for d in self.detect(images[k : k + self.max_batch])
            ]
        if not images:
            return []
        request = _Request(images)
        self._requests.put(request)
        if not request.done.wait(self.timeout_s):
            raise TimeoutError(f"no detections within {self.timeout_s:.0f} s")
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"batches": self.batches, "frames": self.frames, "most_requests": self.most_requests}

    def _loop(self) -> None:
        carry: _Request | None = None
        while True:
            first = carry if carry is not None else self._requests.get()
            carry = None
            if first is None:
                return
            batch, size = [first], len(first.images)
            until = time.monotonic() + self.max_wait_s
            stopping = False
            while size < self.max_batch:
                wait = until - time.monotonic()
                try:
                    nxt = self._requests.get(timeout=wait) if wait > 0 else self._requests.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                if size + len(nxt.images) > self.max_batch:
                    carry = nxt  # runs first in the next batch
                    break
                batch.append(nxt)
                size += len(nxt.images)
            self._run(batch)
            if stopping:
                if carry is not None:
                    self._run([carry])
                return

    def _buffers(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pixels is None or self._out is None:
            size = self.detector.input_size
            self._pixels = self.detector.host_buffer((self.max_batch, size, size, 3))
            self._out = self.detector.output_buffer(self.max_batch)
        return self._pixels, self._out

    def _run(self, requests: list[_Request]) -> None:
        frames = 0
        batch: list[tuple[_Request, list[Prepared]]] = []
        try:
            pixels, out = self._buffers()
            for request in requests:  # each frame letterboxed into its row; a bad one fails its caller only
                try:
                    prepared = [
                        self.detector.prepare(image, into=pixels[frames + k]) for k, image in enumerate(request.images)
                    ]
                except Exception as exc:
                    request.error = exc
                    continue
                batch.append((request, prepared))
                frames += len(prepared)
            if batch:
                rows = padded_size(self.buckets, frames)  # rows past the frames: stale pixels, outputs unread
                with self.gate.turn() if self.gate else contextlib.nullcontext():
                    output = self.detector.run_raw(pixels[:rows], out=out)
                start = 0
                for request, prepared in batch:
                    n = len(prepared)
                    request.result = self.detector.postprocess(output[start : start + n], prepared)
                    start += n
        except Exception as exc:
            log.warning("stream batch of %d frames failed: %s: %s", frames, type(exc).__name__, exc)
            for request, _ in batch:
                request.error = exc
            for request in requests:
                if request.result is None and request.error is None:
                    request.error = exc
        finally:
            with self._lock:
                self.batches += 1
                self.frames += frames
                self.most_requests = max(self.most_requests, len(batch))
            for request in requests:
                request.done.set()
