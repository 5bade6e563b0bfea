"""Provider choice: TensorRT, then CUDA, then CPU, with contentfn's options under the configured ones."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest

from shared.vision.providers import choose_providers


def test_provider_options_from_settings_lie_over_contentfns_own_per_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU here: the providers onnxruntime would offer on one stand in for this machine's.
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    chosen = choose_providers(options={"CUDAExecutionProvider": {"prefer_nhwc": "1"}})
    assert chosen == [
        ("CUDAExecutionProvider", {"arena_extend_strategy": "kSameAsRequested", "prefer_nhwc": "1"}),
        "CPUExecutionProvider",
    ]
    overridden = choose_providers(options={"CUDAExecutionProvider": {"arena_extend_strategy": "kNextPowerOfTwo"}})
    assert overridden[0] == ("CUDAExecutionProvider", {"arena_extend_strategy": "kNextPowerOfTwo"})


def test_a_tensorrt_provider_without_tensorrt_installed_is_left_out_so_cuda_keeps_its_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shared.vision.providers as providers_module
    from shared.errors import ConfigError

    # onnxruntime-gpu lists TensorRT whether or not libnvinfer is there (it is not on this machine)
    listed = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: listed)
    monkeypatch.setattr(providers_module, "_tensorrt_loads", lambda: False)
    chosen = choose_providers(options={"CUDAExecutionProvider": {"prefer_nhwc": "1"}})
    assert chosen == [
        ("CUDAExecutionProvider", {"arena_extend_strategy": "kSameAsRequested", "prefer_nhwc": "1"}),
        "CPUExecutionProvider",
    ]
    with pytest.raises(ConfigError, match=r"CONTENTFN_DETECTOR_PROVIDERS.*libnvinfer"):
        choose_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider"])
    # where TensorRT loads, it comes first, with its engine cache
    monkeypatch.setattr(providers_module, "_tensorrt_loads", lambda: True)
    first = choose_providers(cache_dir=tmp_path / "trt")[0]
    assert first[0] == "TensorrtExecutionProvider" and first[1]["trt_engine_cache_enable"] is True
