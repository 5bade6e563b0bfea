"""The detector's sessions on a GPU: one call at a time per session, one input shape per session.

On a GPU (onnxruntime 1.31, CUDA provider, measured on an H200) one session must see one call at a
time and one input shape: two calls that overlapped on a session returned wrong boxes (off by over
100 px), and a session whose batch size changed from one call to the next planned its convolutions
again every time (batches of 128 and 64 in turn: 841 ms a call, against 38 and 20 ms each alone).
So each call takes an idle session of its input's shape, and one is opened when none is idle;
sessions are kept for the next call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["SessionPool", "batch_sizes", "padded_size"]

log = logging.getLogger(__name__)


class SessionPool:
    """Sessions by input shape; ``open_session`` opens another one (a new ONNX Runtime session of the
    same model and options) when every session of a shape is busy."""

    def __init__(self, first: Any, open_session: Callable[[], Any], *, name: str) -> None:
        self.open_session = open_session
        self.name = name
        self.opened = 1  # ``first`` included
        self._lock = threading.Lock()
        self._spare: list[Any] = [first]  # opened, not yet tied to a shape
        self._idle: dict[tuple[int, ...], list[Any]] = {}

    @contextlib.contextmanager
    def session_for(self, shape: Sequence[int]) -> Iterator[Any]:
        """A session that no other call is running on and that has only seen ``shape``."""
        with self._lock:
            idle = self._idle.setdefault(tuple(shape), [])
            session = idle.pop() if idle else self._spare.pop() if self._spare else None
            if session is None:
                self.opened += 1
        if session is None:
            session = self.open_session()
            log.info("detector %s: %d sessions (one per call at once, per batch shape)", self.name, self.opened)
        try:
            yield session
        finally:
            with self._lock:
                idle.append(session)


def batch_sizes(max_batch: int) -> tuple[int, ...]:
    """The batch sizes run on a GPU: ``max_batch`` alone, a partial batch padded up to it. A session
    sees one input shape (see ``SessionPool``), and each shape is a session of its own to open, warm
    up and hold device memory for, so one shape. The padding costs a partial batch the time of a full
    one, and partial batches are what a worker runs when it has time to spare: on an H200 a batch of
    128 at 640x640 took 38 ms, the pipeline drained 3,435 img/s with every call at 128."""
    return (max_batch,)


def padded_size(sizes: Sequence[int], rows: int) -> int:
    """The smallest of ``sizes`` that holds ``rows`` (``rows`` itself when none does or none is given)."""
    return next((b for b in sizes if b >= rows), rows)
