"""keep_freed_memory: decode-sized buffers freed and taken again stop costing page faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infra.gpu_worker.memory import keep_freed_memory

# Four threads allocate 64 canvases of 640x640x3, free them, and do it again: what a decode pool does
# with a batch's worth of images. Printed: minor page faults per canvas after the first round.
_CHURN = """
import resource, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from infra.gpu_worker.memory import keep_freed_memory

tuned = keep_freed_memory(int(sys.argv[1]))
pool = ThreadPoolExecutor(4)

def batch():
    arrays = list(pool.map(lambda _: np.ones((640, 640, 3), np.uint8), range(64)))
    del arrays

batch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    batch()
print(tuned, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 640)
"""


def _faults_per_canvas(keep_mib: int) -> tuple[bool, float]:
    out = subprocess.run([sys.executable, "-c", _CHURN, str(keep_mib)], capture_output=True, text=True, check=True)
    tuned, faults = out.stdout.split()
    return tuned == "True", float(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_kept_freed_memory_cuts_the_page_faults_of_a_decode_pool() -> None:
    # GIVEN the same churn in two processes, one with the C library's defaults, one tuned
    default_tuned, default_faults = _faults_per_canvas(0)
    tuned, tuned_faults = _faults_per_canvas(512)
    # THEN only the second was tuned, and it faulted its pages in far less often (a 1.2 MB canvas is
    # 300 pages: with the defaults most of them are faulted in again every round)
    assert not default_tuned and tuned
    assert default_faults > 50
    assert tuned_faults < default_faults / 2


def test_zero_leaves_malloc_alone() -> None:
    assert keep_freed_memory(0) is False
