"""At most N model calls at once on one GPU, across every pipeline process of an instance (opt-in).

``CONTENTFN_GPU_CONCURRENT_CALLS`` (0, the default: no gate). What it does to throughput depends on
the host: on the H100 measured here (ONNX Runtime CUDA provider, YOLOv8n at 640x640, batch 128),
four pipeline processes drained 1,173 images/s ungated and 807 gated to one call at a time: calls
overlapped, even though each took longer. A GPU shared with other tenants, or one whose memory
holds only so many batches' activations, is where a gate pays.

The gate is a set of lock files (``flock``): the kernel drops a lock when its holder dies, so a
pipeline killed in the middle of a call cannot leave the GPU gated shut for the others.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["GpuGate"]


class GpuGate:
    """``with gate.turn(): ...`` runs the body while holding one of ``slots`` turns."""

    def __init__(self, directory: Path, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError("a GPU gate needs at least one slot")
        directory.mkdir(parents=True, exist_ok=True)
        self.paths = [directory / f"gpu-call-{k}.lock" for k in range(slots)]
        self._local = threading.local()

    def _fds(self) -> list[int]:
        # One open file per thread and slot: flock locks belong to an open file, so two threads of
        # one process holding the same descriptor would both count as its owner.
        fds: list[int] | None = getattr(self._local, "fds", None)
        if fds is None:
            fds = self._local.fds = [os.open(p, os.O_RDWR | os.O_CREAT, 0o600) for p in self.paths]
        return fds

    @contextmanager
    def turn(self) -> Iterator[None]:
        fds = self._fds()
        held = self._acquire(fds)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)

    @staticmethod
    def _acquire(fds: list[int]) -> int:
        if len(fds) == 1:
            fcntl.flock(fds[0], fcntl.LOCK_EX)
            return fds[0]
        while True:
            for fd in fds:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    continue
            time.sleep(0.0005)

    def close(self) -> None:
        """Close this thread's descriptors (other threads' close with the process)."""
        for fd in getattr(self._local, "fds", None) or []:
            os.close(fd)
        self._local.fds = None
