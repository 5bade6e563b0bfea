"""Batch buffers whose rows the decode threads write into directly.

Each decoded image is letterboxed straight into a free row of the batch that is being filled, so
the model reads the pixels where the decoder left them. Without this, every image had a canvas of
its own (1.2 MB at 640x640) that lived until its batch was stacked and was then copied into the
batch buffer: a batch's worth of canvases allocated and freed per batch, and a copy of 0.18 ms per
image. Profiled in the worker with the model call replaced by a fixed output (two cores, 640x480
JPEGs at 640), page faults per image went from 36-55 to 18-22 and CPU per image from 2.45 to
2.2-2.4 ms. On the GPU host, a process's memory churn measurably slowed the model calls beside it.

A slab (one batch buffer) is *open* while rows are handed out, *closed* once it is full or once a
batch thread looking for work has waited ``max_wait_s`` for it (counted from its first row at the
earliest), *ready* once every row handed out has been written, and free again when its batch has
run. Rows are handed out only after an image is decoded. As before, a batch gathers while the
batch thread is free, for at most ``max_wait_s`` after its first image or after the thread came
back, whichever is later.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np

__all__ = ["Slab", "SlotBatcher"]


class Slab:
    """One batch buffer and what is in its rows (``None``: a row that was taken but not filled)."""

    def __init__(self, buffer: np.ndarray) -> None:
        self.buffer = buffer
        self.items: list[Any] = []
        self.written = 0
        self.first = 0.0  # when its first row was taken (monotonic)

    @property
    def taken(self) -> int:
        return len(self.items)

    def rows(self) -> list[tuple[int, Any]]:
        """(row, item) for every filled row, in row order."""
        return [(k, item) for k, item in enumerate(self.items) if item is not None]

    def _reset(self) -> None:
        self.items = []
        self.written = 0


class SlotBatcher:
    """Hands out rows of a fixed set of batch buffers; gives a batch thread each slab once it is ready.

    Decode threads call :meth:`take_row`, write their image into ``slab.buffer[row]`` and then call
    :meth:`fill` (with ``None`` if they could not). A batch thread calls :meth:`next_ready` and,
    once the model has read the slab, :meth:`give_back`. When every slab is busy, ``take_row``
    waits: decoding is held back until a batch has run, and memory stays what the slabs hold.
    """

    def __init__(self, buffers: list[np.ndarray], max_wait_s: float) -> None:
        if not buffers:
            raise ValueError("SlotBatcher needs at least one batch buffer")
        self.rows_per_slab = len(buffers[0])
        self.max_wait_s = max_wait_s
        self.slabs = [Slab(b) for b in buffers]
        self._free: deque[Slab] = deque(self.slabs)
        self._open: Slab | None = None
        self._closed: deque[Slab] = deque()
        self._idle_since: dict[int, float] = {}  # per batch thread: when it last came back for work
        self._cond = threading.Condition()

    def take_row(self, halt: threading.Event) -> tuple[Slab, int] | None:
        """A row to write one image into; ``None`` once ``halt`` is set."""
        with self._cond:
            while not halt.is_set():
                if self._open is None and self._free:
                    self._open = self._free.popleft()
                    self._open.first = time.monotonic()
                slab = self._open
                if slab is not None:
                    row = slab.taken
                    slab.items.append(None)
                    if slab.taken == self.rows_per_slab:
                        self._close()
                    return slab, row
                self._cond.wait(0.1)
            return None

    def fill(self, slab: Slab, row: int, item: Any) -> None:
        """Row ``row`` of ``slab`` is written (``item``), or was given up (``None``)."""
        with self._cond:
            slab.items[row] = item
            slab.written += 1
            if slab.written == slab.taken:
                self._cond.notify_all()

    def next_ready(self, timeout_s: float) -> Slab | None:
        """The next slab that is closed and fully written; ``None`` after ``timeout_s`` without one.

        A partly filled slab is closed ``max_wait_s`` after its first row or after the calling thread
        came back for work (its last slab returned; calls that timed out do not count), whichever is
        later: while the caller was busy running the last batch, rows kept filling this one, and it
        still gets ``max_wait_s`` to fill up (a partial batch costs a GPU as much as a full one of its
        padded size).
        """
        now = time.monotonic()
        end = now + timeout_s
        caller = threading.get_ident()
        with self._cond:
            # Free since its last batch, across calls that timed out: their timeouts add no wait.
            began = self._idle_since.setdefault(caller, now)
            while True:
                now = time.monotonic()
                slab = self._open
                if slab is not None and now >= max(slab.first, began) + self.max_wait_s:
                    self._close()
                for slab in self._closed:
                    if slab.written == slab.taken:
                        self._closed.remove(slab)
                        del self._idle_since[caller]
                        return slab
                wait = end - now
                if self._open is not None:
                    wait = min(wait, max(self._open.first, began) + self.max_wait_s - now)
                if wait <= 0 and now >= end:
                    return None
                self._cond.wait(max(wait, 0.001))

    def give_back(self, slab: Slab) -> None:
        """The batch has been read from ``slab``: its rows can be handed out again."""
        with self._cond:
            slab._reset()
            self._free.append(slab)
            self._cond.notify_all()

    def busy(self) -> int:
        """Slabs not free (open, closed or running)."""
        with self._cond:
            return len(self.slabs) - len(self._free)

    def _close(self) -> None:
        assert self._open is not None
        self._closed.append(self._open)
        self._open = None
        self._cond.notify_all()
