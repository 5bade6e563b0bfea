"""The GPU worker's Dockerfile cannot be built here (no GPU, no registry): check what it must say."""

from __future__ import annotations

import re

from local.package import reachable_files, unprovided, used_modules
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
    # the database is private (nothing outside the VPC reaches it): pending migrations are applied
    # by the first process that starts, under an advisory lock
    assert "CONTENTFN_MIGRATE_ON_START" not in DOCKERFILE
    assert instructions("CMD")[-1] == '["python", "-m", "infra.gpu_worker"]'


def test_the_image_installs_every_package_the_service_can_import() -> None:
    # GIVEN what the image installs: the project with its extras, and the packages named beside it
    project = re.search(r'pip install "?\.(?:\[([a-z0-9,]+)\])?"?\s', DOCKERFILE)
    assert project, 'the Dockerfile installs the project with pip install ".[extras]"'
    extras = project.group(1).split(",") if project.group(1) else []
    pip_lines = [line for line in DOCKERFILE.splitlines() if "pip install" in line]
    also = [name for line in pip_lines for name in re.findall(r'"([A-Za-z0-9_.-]+)[<>=!~][^"]*"', line)]
    assert "onnxruntime-gpu" in also
    # WHEN following every import the service's entry point can reach (adapters chosen at run time too)
    code = reachable_files(REPO / "infra" / "gpu_worker" / "__main__.py", root=REPO)
    used = used_modules(code, root=REPO)
    # the SQS / Pub/Sub queues and the S3 / GCS stores are among them
    assert {"boto3", "google.cloud.pubsub_v1", "google.cloud.storage"} <= used.keys()
    # THEN each is provided by what the image installs
    assert unprovided(REPO / "pyproject.toml", used, extras=extras, also=also) == {}
