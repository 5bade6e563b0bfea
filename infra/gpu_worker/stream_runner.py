"""Stream workers: one lease and one runner per stream; sample N fps; drop the oldest when behind.

A runner has a reader thread (PyAV demux + decode + sampling) and its own loop that runs the
detector on what the reader buffered. For live sources (rtsp, http) the buffer is a bounded deque:
when inference falls behind, the oldest frames are dropped and counted, so the detections follow
the live picture instead of an ever-growing backlog. A file is not live: its reader waits instead.
Disconnects reconnect with capped exponential backoff; the last error is kept on the stream row as
a code and a redacted message (infra.gpu_worker.stream_source opens the source and describes its
failures). A source that can never be read as registered (refused address, playlist, frames over
the pixel cap) fails the stream at once; one that yields no frame for ``stream_idle_expiry_s``
expires, so a dead camera does not hold a worker's place and its owner's quota for ever.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from infra.gpu_worker.batcher import FrameBatcher
from infra.gpu_worker.gate import GpuGate
from infra.gpu_worker.stream_source import StreamSourceError, describe_failure, open_source
from shared.net.policy import AddressPolicy
from shared.queue.base import backoff_delay
from shared.services import Services
from shared.vision.decode import DecodedImage
from shared.vision.detector import Detector
from shared.vision.stream_registry import (
    StreamLease,
    acquire_streams,
    finish_stream,
    renew_leases,
    set_stream_status,
    write_frame,
)

__all__ = ["StreamRunner", "StreamSupervisor"]

log = logging.getLogger(__name__)


class StreamSupervisor:
    """Acquires and renews stream leases; starts a runner per stream held and stops it when the lease is lost."""

    def __init__(
        self, services: Services, detector: Detector, *, owner: str | None = None, gate: GpuGate | None = None
    ) -> None:
        self.services = services
        self.detector = detector
        s = services.settings
        # One model call for the frames of every stream held here (see infra.gpu_worker.batcher),
        # taking its turns at the GPU gate with the image pipelines when there is one.
        self.batcher = FrameBatcher(detector, max_batch=s.gpu_max_batch, max_wait_s=s.gpu_max_wait_ms / 1000, gate=gate)
        self.owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.runners: dict[int, StreamRunner] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stream-supervisor", daemon=True)

    def start(self) -> StreamSupervisor:
        self.batcher.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10.0)
        for runner in list(self.runners.values()):
            runner.stop()
        for runner in list(self.runners.values()):
            runner.join(10.0)
        self.runners.clear()
        self.batcher.stop()

    def _loop(self) -> None:
        s = self.services.settings
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("stream supervisor iteration failed")
            self._stop.wait(min(s.stream_lease_s / 3, 5.0))

    def tick(self) -> None:
        s = self.services.settings
        for sid, runner in list(self.runners.items()):
            if not runner.alive:
                self.runners.pop(sid)
        with self.services.db.connection() as conn:
            held = renew_leases(conn, self.owner, list(self.runners), s.stream_lease_s)
            room = s.stream_max_per_worker - len(held)
            new = acquire_streams(conn, self.owner, s.stream_lease_s, room, model=self.detector.name)
            conn.commit()
        for sid in set(self.runners) - held:
            log.info("stream %d: lease lost or stream stopped; letting go", sid)
            self.runners.pop(sid).stop()
        for lease in new:
            runner = StreamRunner(self.services, self.batcher, lease, self.owner)
            self.runners[lease.id] = runner
            runner.start()


class StreamRunner:
    def __init__(self, services: Services, detector: Detector | FrameBatcher, lease: StreamLease, owner: str) -> None:
        s = services.settings
        self.services = services
        self.detector = detector
        self.lease = lease
        self.owner = owner
        self.live = urlsplit(lease.url).scheme.lower() != "file"
        self.period = 1.0 / min(lease.fps, s.stream_max_fps)
        self._frames: deque[tuple[float, Any]] = deque(maxlen=s.stream_buffer_frames)
        self._cond = threading.Condition()
        self._dropped = 0
        # A file source resumes after the newest frame stored (by an earlier session or owner).
        self._resume_after = None if self.live else lease.last_frame_ts
        self._eof = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{lease.id}", daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    # -- the runner: connect, read, detect; reconnect with backoff --------------------------
    def _run(self) -> None:
        s = self.services.settings
        failures = 0
        final: str | None = None
        code: str | None = None
        error: str | None = None
        last_frame_at = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    progressed = self._session()
                    if not self.live and self._eof:
                        final = "ended"
                        return
                    failures = 0 if progressed else failures + 1
                    code, error = (None, None) if progressed else ("no_frames", "stream ended without frames")
                except Exception as exc:
                    failures += 1
                    failure = describe_failure(exc)
                    code, error = failure.code, failure.message
                    log.warning("stream %d: %s: %s", self.lease.id, code, error)
                    if not failure.retryable:
                        final = "failed"
                        return
                if self._stop.is_set():
                    return
                now = time.monotonic()
                if failures == 0:
                    last_frame_at = now
                elif now - last_frame_at >= s.stream_idle_expiry_s:
                    final, code = "expired", "idle_expired"
                    error = f"no frame for {s.stream_idle_expiry_s:g} s (last: {error or 'reconnecting'})"
                    return
                delay = backoff_delay(failures, 0.5, s.stream_backoff_cap_s)
                with self.services.db.connection() as conn:
                    set_stream_status(conn, self.lease.id, self.owner, "retrying", error or "reconnecting", code)
                    conn.commit()
                self._stop.wait(delay)
        finally:
            try:
                with self.services.db.connection() as conn:
                    # Only a closing status brings its own error; otherwise the row keeps what was set last.
                    finish_stream(
                        conn, self.lease.id, self.owner, final, error if final else None, code if final else None
                    )
                    conn.commit()
            except Exception:
                log.exception("stream %d: could not give the lease back; it will expire", self.lease.id)

    def _session(self) -> bool:
        """One connection: read until EOF, error or stop. True if any frame was processed."""
        self._eof = False
        reader_error: list[BaseException] = []
        reader = threading.Thread(target=self._read, args=(reader_error,), name=f"stream-{self.lease.id}-read")
        reader.daemon = True
        reader.start()
        processed = 0
        max_batch = self.services.settings.gpu_max_batch
        while True:
            with self._cond:
                while not self._frames and not self._eof and not self._stop.is_set():
                    self._cond.wait(0.2)
                if not self._frames and (self._eof or self._stop.is_set()):
                    break
                batch = [self._frames.popleft() for _ in range(min(max_batch, len(self._frames)))]
                dropped, self._dropped = self._dropped, 0
                self._cond.notify_all()
            images = [DecodedImage(px, "frame", px.shape[1], px.shape[0]) for _, px in batch]
            found = self.detector.detect(images)
            with self.services.db.connection() as conn:
                held = write_frame(
                    conn,
                    self.lease.id,
                    self.owner,
                    self.detector.name,
                    [(ts, dets) for (ts, _), dets in zip(batch, found, strict=True)],
                    dropped,
                )
                conn.commit()
            if not held:
                self.stop()
                break
            if not self.live:
                self._resume_after = max(ts for ts, _ in batch)
            processed += len(batch)
        reader.join(5.0)
        if reader_error and processed == 0:
            raise reader_error[0]
        if reader_error:
            lost = describe_failure(reader_error[0])
            log.warning("stream %d: connection lost: %s: %s", self.lease.id, lost.code, lost.message)
        return processed > 0

    def _read(self, errors: list[BaseException]) -> None:
        s = self.services.settings
        max_pixels = s.stream_max_pixels
        try:
            with open_source(
                self.lease.url,
                policy=AddressPolicy.from_networks(s.http_allow_networks),
                allow_files=s.stream_allow_file_urls,
                max_redirects=s.http_max_redirects,
                tls_verify=s.stream_tls_verify,
                tls_ca_file=s.stream_tls_ca_file,
            ) as container:
                if not container.streams.video:
                    raise StreamSourceError("no_video", "the source has no video stream", retryable=True)
                stream = container.streams.video[0]
                if self.lease.keyframes_only:
                    stream.codec_context.skip_frame = "NONKEY"  # the decoder skips the rest where it can
                stream.thread_type = "AUTO"
                next_ts: float | None = None
                ts = 0.0
                for frame in container.decode(stream):
                    if self._stop.is_set():
                        return
                    if self.lease.keyframes_only and not frame.key_frame:
                        continue  # decoders that ignore skip_frame still hand every frame over
                    if frame.width * frame.height > max_pixels:
                        # Before the RGB conversion, which would allocate three bytes a pixel more.
                        raise StreamSourceError(
                            "frame_too_large",
                            f"frames of {frame.width}x{frame.height} are over the {max_pixels}-pixel cap",
                            retryable=False,
                        )
                    # Files: seconds into the file. Live sources: Unix time of arrival, because their
                    # own clock restarts with every connection and would collide with earlier frames.
                    if self.live:
                        ts = time.time()
                    elif frame.time is not None:
                        ts = float(frame.time)
                    if not self.lease.keyframes_only:
                        if next_ts is not None and ts + 1e-6 < next_ts:
                            continue
                        next_ts = (next_ts or ts) + self.period
                        while next_ts <= ts:
                            next_ts += self.period
                    if self._resume_after is not None and ts <= self._resume_after + 1e-6:
                        continue  # stored already, before a reconnect or a takeover
                    self._push(ts, frame.to_ndarray(format="rgb24"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _push(self, ts: float, pixels: Any) -> None:
        with self._cond:
            if not self.live:
                while len(self._frames) == self._frames.maxlen and not self._stop.is_set():
                    self._cond.wait(0.2)
            elif len(self._frames) == self._frames.maxlen:
                self._dropped += 1  # the deque drops its oldest frame on append
            self._frames.append((ts, pixels))
            self._cond.notify_all()
