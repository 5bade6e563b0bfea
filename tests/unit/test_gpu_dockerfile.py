"""The GPU worker's Dockerfile cannot be built here (no GPU, no registry): check what it must say."""

from __future__ import annotations

import re

from tests.conftest import REPO

DOCKERFILE = (REPO / "infra" / "gpu_worker" / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.MULTILINE)]


def test_cuda_runtime_base_and_gpu_onnxruntime_replace_the_cpu_build() -> None:
    assert re.match(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-", instructions("FROM")[0])
    assert "pip uninstall -y onnxruntime" in DOCKERFILE and "onnxruntime-gpu" in DOCKERFILE


def test_runs_as_non_root_with_a_healthcheck_on_the_metrics_port() -> None:
    assert instructions("USER") and instructions("USER")[-1] not in ("root", "0")
    healthcheck = DOCKERFILE.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert "CMD" in healthcheck and "/healthz" in healthcheck
    assert "CONTENTFN_GPU_METRICS_PORT=8080" in DOCKERFILE and "EXPOSE 8080" in DOCKERFILE
    assert instructions("CMD")[-1] == '["python", "-m", "infra.gpu_worker"]'
