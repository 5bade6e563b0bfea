"""Which ONNX Runtime execution providers the detector asks for, with which options and threads.

TensorRT, then CUDA, then CPU: whichever this onnxruntime build offers and can start here.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.errors import ConfigError

__all__ = ["GPU_PROVIDERS", "choose_providers", "session_options"]

log = logging.getLogger(__name__)

_PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def choose_providers(
    requested: Sequence[str] = (),
    *,
    cache_dir: Path | None = None,
    options: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Any]:
    """TensorRT, then CUDA, then CPU: whichever this onnxruntime build offers (or the requested subset).

    onnxruntime itself falls back to the next provider when one is listed but cannot start (a
    TensorRT provider without its libraries); the provider actually used is read from the session.
    ``options`` (``CONTENTFN_DETECTOR_PROVIDER_OPTIONS``) are laid over contentfn's own, per provider;
    onnxruntime refuses a key it does not know when the session starts.
    """
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    wanted = list(requested) or list(_PROVIDER_ORDER)
    chosen = [p for p in wanted if p in available]
    if "TensorrtExecutionProvider" in chosen and not _tensorrt_loads():
        # onnxruntime-gpu lists its TensorRT provider whether or not TensorRT is installed. Without
        # it the session's start fails over to a CUDA provider stripped of every option given here
        # (the arena setting, CONTENTFN_DETECTOR_PROVIDER_OPTIONS): so not listed at all.
        if requested:
            raise ConfigError(
                "CONTENTFN_DETECTOR_PROVIDERS asks for TensorrtExecutionProvider, but TensorRT's runtime "
                "library (libnvinfer) cannot be loaded here"
            )
        chosen.remove("TensorrtExecutionProvider")
        log.info("TensorRT is not installed: the detector runs on the next provider available")
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    own: dict[str, dict[str, Any]] = {
        # Grow the memory arena by what is asked, not to the next power of two: several pipeline
        # processes share one GPU, and at batch 128 / 640x640 a doubling overshoots by gigabytes.
        "CUDAExecutionProvider": {"arena_extend_strategy": "kSameAsRequested"},
    }
    if cache_dir is not None:
        # TensorRT builds an engine per input shape; keep them across restarts.
        own["TensorrtExecutionProvider"] = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)}
    out: list[Any] = []
    for name in chosen:
        merged = {**own.get(name, {}), **dict((options or {}).get(name, {}))}
        if name == "TensorrtExecutionProvider" and cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
        out.append((name, merged) if merged else name)
    return out


def _tensorrt_loads() -> bool:
    """Whether TensorRT's runtime library loads in this process (the TensorRT provider needs it)."""
    for name in ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def session_options(ort: Any, chosen: Sequence[Any], threads: int) -> Any:
    """Session options for the chosen providers. On a GPU the CPU thread pool has nothing to run but
    the odd shape op, and its threads spin while they wait (a core each, per session): one thread,
    no spinning, leaves the cores to decoding."""
    opts = ort.SessionOptions()
    on_gpu = any((p[0] if isinstance(p, tuple) else p) in GPU_PROVIDERS for p in chosen)
    if on_gpu:
        opts.intra_op_num_threads = threads or 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    elif threads:
        opts.intra_op_num_threads = threads
    return opts
