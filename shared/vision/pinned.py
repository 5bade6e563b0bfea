"""Page-locked host buffers for the GPU path, through the CUDA runtime that onnxruntime-gpu loads.

A copy from pageable memory to the GPU is staged by the driver through a small page-locked buffer,
chunk by chunk, on the calling thread; from page-locked memory the copy engine reads the buffer
directly (DMA). For a batch of 128 images at 640x640 (157 MB of uint8) that is the difference
between the copy taking a CPU core for tens of milliseconds and it running at bus speed.

``pin`` registers an existing numpy array (``cudaHostRegister``) and returns whether it worked;
where no CUDA runtime is loaded (CPU-only onnxruntime) it returns False and nothing changes.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any

import numpy as np

__all__ = ["pin", "unpin"]

log = logging.getLogger(__name__)

_CUDART_NAMES = ("libcudart.so.13", "libcudart.so.12", "libcudart.so")
_lock = threading.Lock()
_cudart: Any = None
_looked = False


def _runtime() -> Any:
    global _cudart, _looked
    with _lock:
        if not _looked:
            _looked = True
            for name in _CUDART_NAMES:
                try:
                    lib = ctypes.CDLL(name)
                except OSError:
                    continue
                lib.cudaHostRegister.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint]
                lib.cudaHostRegister.restype = ctypes.c_int
                lib.cudaHostUnregister.argtypes = [ctypes.c_void_p]
                lib.cudaHostUnregister.restype = ctypes.c_int
                _cudart = lib
                break
        return _cudart


def pin(array: np.ndarray) -> bool:
    """Page-lock ``array``'s memory for fast, asynchronous transfers; False where that cannot be done."""
    lib = _runtime()
    if lib is None or not array.flags.c_contiguous or array.nbytes == 0:
        return False
    status = lib.cudaHostRegister(array.ctypes.data, array.nbytes, 0)
    if status != 0:
        log.warning(
            "could not page-lock a %d-byte host buffer (CUDA error %d); using pageable memory", array.nbytes, status
        )
        return False
    return True


def unpin(array: np.ndarray) -> None:
    lib = _runtime()
    if lib is not None:
        lib.cudaHostUnregister(array.ctypes.data)
