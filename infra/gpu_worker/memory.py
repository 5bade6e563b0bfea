"""Keep freed memory inside the process instead of handing it back and faulting it in again.

Each image passes through megabyte-sized buffers (the decoded pixels, the file's bytes) that
decode threads allocate and free thousands of times a second. glibc's malloc gives such blocks back
to the kernel when they are freed (``munmap``, or trimming the top of a thread's heap) and takes
them again on the next allocation, one page fault per 4 KiB page touched. Raising the trim and
mmap thresholds keeps that memory in the process for reuse. Profiled in the worker with the model
call replaced by a fixed output (two cores, 640x480 JPEGs at 640): 18-21 page faults per image down
to 0-4, and 2.2 to 2.0 ms of CPU per image in steady state. On the GPU host, memory churn beside a
model call was seen to slow the call.

The cost: memory a pipeline freed stays counted against the process, up to ``keep_mib``; what
it holds at once is already bounded by the in-flight cap.
"""

from __future__ import annotations

import ctypes
import logging

__all__ = ["keep_freed_memory", "kept_mib"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
_kept = 0  # MiB this process keeps, once tuned


def kept_mib() -> int:
    """What :func:`keep_freed_memory` set in this process (0: malloc as the C library left it)."""
    return _kept


def keep_freed_memory(keep_mib: int) -> bool:
    """Tune this process's malloc to keep up to ``keep_mib`` MiB of freed memory; False where it
    cannot (0 asked, or a C library other than glibc), and nothing changes then."""
    global _kept
    if keep_mib <= 0:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    keep = min(keep_mib, 2047) << 20
    ok = mallopt(_M_TRIM_THRESHOLD, keep) == 1 and mallopt(_M_MMAP_THRESHOLD, min(keep, _MMAP_THRESHOLD_MAX)) == 1
    if ok:
        _kept = keep >> 20
        log.info("malloc keeps up to %d MiB of freed memory in this process", keep >> 20)
    else:
        log.warning("could not tune malloc (CONTENTFN_GPU_MALLOC_KEEP_MIB); page faults per image stay higher")
    return ok
