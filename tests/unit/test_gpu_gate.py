"""The GPU gate: turns held across processes and threads, and freed when a holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from infra.gpu_worker.gate import GpuGate

HOLDER = """
import sys, time
from pathlib import Path
from infra.gpu_worker.gate import GpuGate
gate = GpuGate(Path(sys.argv[1]), 1)
with gate.turn():
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(directory: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_one_slot_makes_another_process_wait_until_the_holder_is_done(tmp_path: Path) -> None:
    proc = _holder(tmp_path, 1.0)
    started = time.monotonic()
    with GpuGate(tmp_path, 1).turn():
        waited = time.monotonic() - started
    proc.wait(10)
    assert waited >= 0.5, f"got a turn after {waited:.2f} s while another process held the only one"


def test_a_holder_killed_mid_call_frees_its_turn(tmp_path: Path) -> None:
    proc = _holder(tmp_path, 60.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    started = time.monotonic()
    with GpuGate(tmp_path, 1).turn():
        waited = time.monotonic() - started
    assert waited < 2.0, f"the killed holder's turn stayed taken for {waited:.2f} s"


def test_two_slots_let_two_threads_in_and_keep_a_third_waiting(tmp_path: Path) -> None:
    gate = GpuGate(tmp_path, 2)
    inside, most = 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal inside, most
        with gate.turn():
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.2)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most == 2


def test_a_gate_needs_a_slot(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        GpuGate(tmp_path, 0)
