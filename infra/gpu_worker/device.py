"""One process owns the GPU; the pipeline processes send it batches through shared memory (opt-in).

``CONTENTFN_GPU_DEVICE_PROCESS=true``. On the H100 measured so far, model calls that overlapped from
several pipeline processes (one CUDA context each), or from two threads of a process that was also
decoding, each took several times longer than one call alone (50 ms for a batch of 128 at 640x640),
and taking turns between processes still cost a context switch per call (170 ms). Decoding, on the
other hand, scales with processes, not threads. This splits the two, as an inference server does:
the pipeline processes claim, decode, letterbox, write and ack; a device process holds the only
session and runs one call at a time. Two call threads of a process that did nothing else did
3,000 img/s there against 2,258 for one: ``CONTENTFN_GPU_DEVICE_CALLS=2`` lets that many calls overlap,
each on a session of its own. (On an H200 since, the slow calls came from batch sizes that changed
between calls on one session, now padded to one size; through this process 8 pipelines drained
3,435 img/s with one call at a time and 3,650 with two, 38 ms a call, as fast as the model alone.)

Transfers: each pipeline's batch and output buffers are shared memory that the device process maps
once and page-locks (``cudaHostRegister``), so a call sends a few bytes over a socket and the batch
goes from the pipeline's buffer to the GPU by DMA, with no copy between processes. A call names its
blocks and row count; the reply says ok or carries the error. On Linux a block is an anonymous
memfd whose descriptor travels over the socket (SCM_RIGHTS): it is counted as the processes' memory,
and /dev/shm, which Docker and Kubernetes cap at 64 MB unless told otherwise, plays no part.
Elsewhere it is a POSIX shared memory block found by name.

Failure: if the device process dies, calls fail with ``DeviceUnavailable``; the pipelines put those
batches back on the queue without using up an attempt and wait, the pool restarts the device
process, and each pipeline's next call connects again and maps its blocks anew. Blocks of a pipeline
that dies are unmapped when its connection closes.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener, answer_challenge, deliver_challenge
from multiprocessing.reduction import recv_handle, send_handle
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

from infra.gpu_worker.memory import keep_freed_memory
from shared.errors import ConfigError
from shared.vision.detector import Detector, load_detector, spec_from_settings
from shared.vision.pinned import pin, unpin
from shared.vision.sessions import batch_sizes

__all__ = ["DeviceAddress", "DeviceUnavailable", "RemoteDetector", "device_usage", "serve_device"]

log = logging.getLogger(__name__)


class DeviceUnavailable(RuntimeError):
    """The device process cannot be reached (it died, or is starting again): not the batch's fault."""


@dataclass(frozen=True)
class DeviceAddress:
    """Where the device process listens, and the key a pipeline proves itself with."""

    path: str
    authkey: bytes

    @classmethod
    def fresh(cls) -> DeviceAddress:
        # A short path: a Unix socket's name is limited to about 100 bytes.
        folder = Path(tempfile.gettempdir())
        return cls(str(folder / f"contentfn-gpu-{secrets.token_hex(6)}.sock"), secrets.token_bytes(16))


_MEMFD = hasattr(os, "memfd_create")


class _Shared:
    """Memory that a pipeline and the device process both map (see the module's docstring)."""

    def __init__(self, buf: Any, *, fd: int | None = None, shm: SharedMemory | None = None) -> None:
        self.buf = buf  # an mmap, or the SharedMemory's memoryview
        self.fd = fd  # the memfd, kept by the pipeline that made it, to pass again after a reconnect
        self.shm = shm

    @classmethod
    def create(cls, size: int) -> _Shared:
        if not _MEMFD:
            _check_shm_room(size)
            shm = SharedMemory(create=True, size=size)
            return cls(shm.buf, shm=shm)
        fd = os.memfd_create("contentfn-gpu-batch", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            return cls(mmap.mmap(fd, size), fd=fd)
        except OSError:
            os.close(fd)
            raise

    @property
    def name(self) -> str | None:
        """The POSIX block's name; None for a memfd, whose descriptor follows the message instead."""
        return None if self.shm is None else self.shm.name

    def send(self, conn: Connection) -> None:
        if self.fd is not None:
            send_handle(conn, self.fd, 0)

    @classmethod
    def attach(cls, conn: Connection, name: str | None, size: int) -> _Shared:
        """The device process's side: a memfd from the connection, or a POSIX block by name."""
        if name is not None:
            shm = SharedMemory(name=name)  # the pipeline that made it unlinks it
            return cls(shm.buf, shm=shm)
        fd = recv_handle(conn)
        try:
            return cls(mmap.mmap(fd, size))
        finally:
            os.close(fd)

    def close(self) -> None:
        """Unmap (``BufferError`` while an array over it is alive) and, for the maker, let it go."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.shm is not None:
            self.shm.close()
        else:
            self.buf.close()

    def unlink(self) -> None:
        if self.shm is not None:
            self.shm.unlink()


def _nbytes(shape: tuple[int, ...], dtype: Any) -> int:
    return max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)


@dataclass
class _Block:
    shared: _Shared
    array: np.ndarray
    pinned: bool


@dataclass
class _Client:
    conn: Connection
    blocks: dict[int, _Block] = field(default_factory=dict)


class _Usage:
    """What the device process has done: calls, images, and the seconds a call was running (at least one:
    with ``gpu_device_calls`` above 1 calls overlap, and busy time counts each moment once)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.calls = self.images = self.running = self.peak = 0
        self.last_rows = self.shape_changes = 0  # calls whose batch size differed from the call before
        self.busy_s = 0.0
        self._since = 0.0
        self.blocks = self.pinned_blocks = 0  # mapped now, and of those page-locked

    def mapped(self, pinned: bool, sign: int = 1) -> None:
        with self._lock:
            self.blocks += sign
            self.pinned_blocks += sign if pinned else 0

    @contextlib.contextmanager
    def call(self, rows: int) -> Iterator[None]:
        with self._slots:
            with self._lock:
                if self.running == 0:
                    self._since = time.perf_counter()
                self.running += 1
                self.peak = max(self.peak, self.running)
                self.shape_changes += rows != self.last_rows
                self.last_rows = rows
            try:
                yield
            finally:
                with self._lock:
                    self.running -= 1
                    self.calls += 1
                    self.images += rows
                    if self.running == 0:
                        self.busy_s += time.perf_counter() - self._since

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            busy = self.busy_s + (time.perf_counter() - self._since if self.running else 0.0)
            return {
                "calls": self.calls,
                "images": self.images,
                "busy_s": busy,
                "running": self.running,
                "peak_running": self.peak,
                "call_limit": self.limit,
                "blocks": self.blocks,
                "pinned_blocks": self.pinned_blocks,
                "shape_changes": self.shape_changes,
            }


def serve_device(settings: Any, address: DeviceAddress, ready: Connection | None = None) -> None:
    """The device process: load the model and answer each pipeline on its own thread, running at most
    ``gpu_device_calls`` model calls at once. (Each pipeline's ``GpuWorker.start`` runs every padded
    batch size through it, which warms the shapes here.)"""
    keep_freed_memory(settings.gpu_malloc_keep_mib)  # the model's host-side buffers, call after call
    detector = load_detector(settings)
    if settings.gpu_device_calls > 1:
        # A session per call that may overlap another (see shared.vision.sessions), each warmed here: the
        # pipelines' own warm-up, one call at a time, reaches only one of them.
        detector.warm(batch_sizes(settings.gpu_max_batch), per_size=settings.gpu_device_calls)
    usage = _Usage(settings.gpu_device_calls)
    info = {"provider": detector.provider, "on_gpu": detector.on_gpu, "pinned": detector.pinned}
    Path(address.path).unlink(missing_ok=True)  # left by a device process that died
    # No authkey here: Listener.accept would run the handshake on this thread, where a client that
    # connects and never answers would hold up every later one. Each client's thread runs it instead.
    listener = Listener(address.path, family="AF_UNIX")
    os.chmod(address.path, 0o600)  # the instance's own user only
    log.info("device process ready: %s, %d call(s) at once", info, usage.limit)
    if ready is not None:
        ready.send(info)
        ready.close()
    try:
        while True:
            try:
                conn = listener.accept()
            except OSError:
                return
            threading.Thread(
                target=_serve_client,
                args=(conn, address.authkey, info, detector, usage),
                name="gpu-device-client",
                daemon=True,
            ).start()
    finally:
        listener.close()


def _serve_client(conn: Connection, authkey: bytes, info: dict[str, Any], detector: Detector, usage: _Usage) -> None:
    """One pipeline's (or one observer's) connection: the handshake, then its requests in turn, until it closes."""
    client = _Client(conn)
    try:
        deliver_challenge(conn, authkey)  # what Listener(authkey=...).accept does, off the accepting thread
        answer_challenge(conn, authkey)
        conn.send(info)
        while True:
            message = conn.recv()
            conn.send(_handle(message, client, detector, usage))
    except AuthenticationError as exc:
        log.warning("refused a device connection: %s", exc)
    except (EOFError, OSError):  # the pipeline is gone (it may have died mid-call)
        pass
    finally:
        for block in client.blocks.values():
            usage.mapped(block.pinned, -1)
        _drop(client)
        conn.close()


def _handle(message: tuple[Any, ...], client: _Client, detector: Detector, usage: _Usage) -> tuple[Any, ...]:
    kind = message[0]
    try:
        if kind == "run":
            _, src, rows, dst = message
            with usage.call(rows):
                detector.run_raw(client.blocks[src].array[:rows], out=client.blocks[dst].array)
            return ("ok",)
        if kind == "usage":
            return ("ok", usage.snapshot())
        if kind == "map":
            _, key, name, shape, dtype = message
            shared = _Shared.attach(client.conn, name, _nbytes(shape, dtype))
            array = np.ndarray(shape, dtype=np.dtype(dtype), buffer=shared.buf)
            block = client.blocks[key] = _Block(shared, array, detector.pinned and pin(array))
            usage.mapped(block.pinned)
            return ("ok",)
        if kind == "unmap":
            gone = client.blocks.pop(message[1], None)
            if gone is not None:
                usage.mapped(gone.pinned, -1)
                _release(gone)
            return ("ok",)
        return ("error", f"unknown device request {kind!r}")
    except Exception as exc:
        log.exception("device request %s failed", kind)
        return ("error", f"{type(exc).__name__}: {exc}")


def _release(block: _Block) -> None:
    if block.pinned:
        unpin(block.array)
    del block.array
    block.shared.close()


def _drop(client: _Client) -> None:
    for block in client.blocks.values():
        with contextlib.suppress(BufferError):  # a view still alive: the mapping goes with it
            _release(block)
    client.blocks.clear()


def _check_shm_room(size: int, folder: str = "/dev/shm") -> None:  # noqa: S108 (only read: statvfs)
    """Where POSIX shared memory is used (no memfd), refuse clearly before a process dies of SIGBUS
    touching a block that /dev/shm cannot hold (Docker gives containers 64 MB unless told otherwise;
    a batch of 128 at 640x640 is 157 MB)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return  # no such folder here: the platform's shared memory has no such limit to check
    free = st.f_bavail * st.f_frsize
    if free < size:
        raise ConfigError(
            f"{folder} has {free / 2**20:.0f} MiB free, a {size / 2**20:.0f} MiB batch buffer does not fit: "
            "give the container more shared memory (docker --shm-size) "
            "or turn CONTENTFN_GPU_DEVICE_PROCESS off"
        )


def device_usage(address: DeviceAddress, timeout_s: float = 1.0) -> dict[str, Any] | None:
    """The device process's calls, images and busy seconds (``_Usage``); None if it cannot be reached."""
    try:
        conn = Client(address.path, family="AF_UNIX", authkey=address.authkey)
    except OSError:
        return None
    try:
        if not conn.poll(timeout_s):
            return None
        conn.recv()  # the greeting
        conn.send(("usage",))
        if not conn.poll(timeout_s):
            return None
        reply = conn.recv()
        return dict(reply[1]) if reply[0] == "ok" else None
    except (EOFError, OSError):
        return None
    finally:
        conn.close()


class RemoteDetector(Detector):
    """A pipeline process's detector when another process owns the device.

    Pre- and post-processing run here, from a CPU session of the same model (it reads the model's
    layout, labels and output shape); ``run_raw`` is a call to the device process. Buffers from
    ``host_buffer`` and ``output_buffer`` are shared memory the device process maps once. After the
    device process restarts, the next call connects again and maps the buffers anew.
    """

    def __init__(self, settings: Any, address: DeviceAddress) -> None:
        # One thread: this session only tells the output's shape, once.
        super().__init__(spec_from_settings(settings), providers=["CPUExecutionProvider"], threads=1, pinned=False)
        self.output_tail()  # from the local CPU session, before run_raw goes remote
        self.address = address
        self._call = threading.Lock()
        self._conn: Connection | None = None
        self._blocks: dict[int, tuple[_Shared, np.ndarray]] = {}
        self._retired: list[_Shared] = []  # released while a view was alive: unmapped with this process
        self._scratch: dict[tuple[str, int], np.ndarray] = {}  # per thread: a stream batcher's, say
        with self._call:
            self._connect()

    def warm(self, sizes: Sequence[int], per_size: int = 1) -> None:
        """Nothing here: the device process holds and warms the sessions (``CONTENTFN_GPU_DEVICE_CALLS``)."""

    def _connect(self) -> Connection:
        conn = Client(self.address.path, family="AF_UNIX", authkey=self.address.authkey)
        info = conn.recv()
        self.provider, self.on_gpu, self.pinned = str(info["provider"]), bool(info["on_gpu"]), bool(info["pinned"])
        for key, (shared, array) in self._blocks.items():
            conn.send(("map", key, shared.name, array.shape, array.dtype.str))
            shared.send(conn)
            conn.recv()
        self._conn = conn
        return conn

    def _request(self, *message: Any, shared: _Shared | None = None) -> None:
        with self._call:
            try:
                conn = self._conn or self._connect()
                conn.send(message)
                if shared is not None:
                    shared.send(conn)
                reply = conn.recv()
            except (EOFError, OSError) as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                raise DeviceUnavailable(f"the device process is unavailable: {type(exc).__name__}: {exc}") from exc
        if reply[0] != "ok":
            raise RuntimeError(f"device process: {reply[1]}")

    def host_buffer(self, shape: tuple[int, ...], dtype: Any = np.uint8) -> np.ndarray:
        dt = np.dtype(dtype)
        shared = _Shared.create(_nbytes(shape, dt))
        array: np.ndarray = np.ndarray(shape, dtype=dt, buffer=shared.buf)
        array[...] = 0
        self._blocks[id(array)] = (shared, array)
        self._request("map", id(array), shared.name, tuple(shape), dt.str, shared=shared)
        return array

    def release_buffer(self, buffer: np.ndarray) -> None:
        entry = self._blocks.pop(id(buffer), None)
        if entry is None:
            return
        with contextlib.suppress(RuntimeError):  # a device process that is gone has nothing mapped
            self._request("unmap", id(buffer))
        shared = entry[0]
        shared.unlink()
        del entry
        self._retired.append(shared)
        # Unmapped once no array over it is left (the caller usually still holds this one).
        for old in list(self._retired):
            with contextlib.suppress(BufferError):
                old.close()
                self._retired.remove(old)

    def _block_of(self, array: np.ndarray) -> int | None:
        """The key of the mapped block that ``array`` is the first rows of."""
        ptr = array.__array_interface__["data"][0]
        for key, (_, block) in self._blocks.items():
            if block.__array_interface__["data"][0] == ptr and block.shape[1:] == array.shape[1:]:
                return key
        return None

    def _staging(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """A mapped block for arrays that were not made by ``host_buffer`` (a stream batch, say)."""
        key = (name, threading.get_ident())
        have = self._scratch.get(key)
        if have is None or len(have) < shape[0] or have.shape[1:] != shape[1:] or have.dtype != dtype:
            if have is not None:
                self.release_buffer(have)
            have = self._scratch[key] = self.host_buffer(shape, dtype)
        return have

    def run_raw(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        rows = len(pixels)
        tail, dtype = self.output_tail()
        src = self._block_of(pixels)
        if src is None:
            staged = self._staging("pixels", pixels.shape, pixels.dtype)
            staged[:rows] = pixels
            src = id(staged)
        target = out if out is not None and self._block_of(out) is not None else None
        if target is None:
            target = self._staging("output", (rows, *tail), dtype)
        self._request("run", src, rows, id(target))
        if out is None:
            return np.array(target[:rows])
        if target is not out:
            out[:rows] = target[:rows]
        return out[:rows]

    def close(self) -> None:
        for key in list(self._blocks):
            self.release_buffer(self._blocks[key][1])
        if self._conn is not None:
            self._conn.close()
