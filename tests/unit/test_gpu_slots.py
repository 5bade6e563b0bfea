"""SlotBatcher: decode threads write images into batch rows; a batch runs when full or after max_wait."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from infra.gpu_worker.slots import Slab, SlotBatcher


def _buffers(n: int, rows: int = 4) -> list[np.ndarray]:
    return [np.zeros((rows, 2, 2, 3), np.uint8) for _ in range(n)]


def _add(slots: SlotBatcher, item: str) -> Slab:
    """Take a row, write ``item`` there, and return the row's slab."""
    got = slots.take_row(threading.Event())
    assert got is not None
    slots.fill(got[0], got[1], item)
    return got[0]


def test_a_full_slab_is_ready_at_once_with_its_rows_in_order() -> None:
    slots = SlotBatcher(_buffers(2), max_wait_s=60.0)
    halt = threading.Event()
    # GIVEN four rows taken and filled (the slab holds four)
    taken = [slots.take_row(halt) for _ in range(4)]
    assert all(t is not None for t in taken)
    for t in taken:
        assert t is not None
        slab, row = t
        slab.buffer[row] = row + 1
        slots.fill(slab, row, f"image-{row}")
    # WHEN a batch thread asks, long before max_wait
    t0 = time.monotonic()
    ready = slots.next_ready(timeout_s=5.0)
    # THEN it gets that slab at once, every row in order, the pixels where the writers left them
    assert ready is not None and time.monotonic() - t0 < 1.0
    assert ready.rows() == [(k, f"image-{k}") for k in range(4)]
    assert [int(ready.buffer[k, 0, 0, 0]) for k in range(4)] == [1, 2, 3, 4]
    # AND the next row comes from the other slab
    nxt = slots.take_row(halt)
    assert nxt is not None and nxt[0] is not ready and nxt[1] == 0


def test_a_partial_slab_runs_after_max_wait_and_not_before() -> None:
    slots = SlotBatcher(_buffers(2), max_wait_s=0.3)
    _add(slots, "only")
    # WHEN asked with a timeout shorter than max_wait: nothing yet
    assert slots.next_ready(timeout_s=0.05) is None
    # THEN once max_wait has passed since its first row, the one-image batch is ready
    ready = slots.next_ready(timeout_s=2.0)
    assert ready is not None and ready.rows() == [(0, "only")]


def test_a_closed_slab_waits_for_the_rows_still_being_written() -> None:
    slots = SlotBatcher(_buffers(1, rows=2), max_wait_s=60.0)
    halt = threading.Event()
    a, b = slots.take_row(halt), slots.take_row(halt)  # full: closed, but nothing written yet
    assert a is not None and b is not None
    slots.fill(a[0], a[1], "a")
    # WHEN one row is still being written, the slab is not handed out
    assert slots.next_ready(timeout_s=0.1) is None
    # THEN a row given up (None) counts as written, and is left out of the rows
    threading.Timer(0.1, slots.fill, args=(b[0], b[1], None)).start()
    ready = slots.next_ready(timeout_s=2.0)
    assert ready is not None and ready.rows() == [(0, "a")]


def test_rows_wait_while_every_slab_is_busy_and_resume_when_one_is_given_back() -> None:
    slots = SlotBatcher(_buffers(1, rows=1), max_wait_s=60.0)
    halt = threading.Event()
    _add(slots, "x")
    ready = slots.next_ready(timeout_s=1.0)  # running now
    assert ready is not None and slots.busy() == 1
    # GIVEN a decode thread that wants a row while the only slab runs
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(slots.take_row(halt)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and got == []  # it waits (backpressure on decoding)
    # WHEN the batch has been read and the slab given back
    slots.give_back(ready)
    waiter.join(2.0)
    # THEN the waiting thread gets row 0 of the emptied slab
    assert got and got[0] is not None and got[0][1] == 0  # type: ignore[index]
    assert ready.rows() == []


def test_a_halt_frees_a_thread_waiting_for_a_row() -> None:
    slots = SlotBatcher(_buffers(1, rows=1), max_wait_s=60.0)
    halt = threading.Event()
    assert slots.take_row(halt) is not None  # the only row is taken
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(slots.take_row(halt)))
    waiter.start()
    halt.set()
    waiter.join(2.0)
    assert not waiter.is_alive() and got == [None]


def test_no_buffers_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SlotBatcher([], max_wait_s=0.01)


def test_a_batch_thread_coming_back_still_gives_an_old_partial_slab_max_wait_to_fill() -> None:
    slots = SlotBatcher(_buffers(2, rows=3), max_wait_s=0.5)
    # GIVEN a slab whose first row was filled long before (the batch thread was busy meanwhile)
    _add(slots, "early").first -= 10.0

    # WHEN the batch thread asks, and two more images arrive 0.1 s later
    def late_rows() -> None:
        for name in ("a", "b"):
            _add(slots, name)

    threading.Timer(0.1, late_rows).start()
    t0 = time.monotonic()
    ready = slots.next_ready(timeout_s=5.0)
    # THEN it got the full batch of three (not the lone early image), well before max_wait ran out again
    assert ready is not None and [item for _, item in ready.rows()] == ["early", "a", "b"]
    assert time.monotonic() - t0 < 0.45
