"""The GPU worker's Dockerfile cannot be built here (no GPU, no registry): check what it must say."""

from __future__ import annotations

import re

from local.lock import IMAGES, lock_entries
from local.package import reachable_files, unprovided, used_modules
from tests.conftest import REPO

DOCKERFILE = (REPO / "infra" / "gpu_worker" / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.MULTILINE)]


def test_cuda_runtime_base_and_gpu_onnxruntime_replace_the_cpu_build() -> None:
    assert re.match(r"nvidia/cuda:\d+\.\d+\.\d+-cudnn-runtime-", instructions("FROM")[0])
    # the image's lock has the GPU build in place of the CPU one
    locked = lock_entries(REPO / IMAGES["gpu"].lock)
    assert "onnxruntime-gpu" in locked and "onnxruntime" not in locked


def test_the_image_carries_the_users_model_not_the_agpl_demo_detector() -> None:
    # GIVEN no nudenet wheel installed: its detector (AGPL-3.0) is for the tests and the local demo
    assert "nudenet" not in lock_entries(REPO / IMAGES["gpu"].lock)
    assert not any("nudenet" in line for line in DOCKERFILE.splitlines() if not line.startswith("#"))
    # THEN a folder of the build context (a build argument) is baked in where the settings look
    assert "ARG DETECTOR_MODEL_DIR=infra/gpu_worker/model" in DOCKERFILE
    assert "COPY ${DETECTOR_MODEL_DIR}/ /opt/contentfn/detector/" in DOCKERFILE
    assert "CONTENTFN_DETECTOR_MODEL_PATH=/opt/contentfn/detector/model.onnx" in DOCKERFILE
    assert (REPO / "infra" / "gpu_worker" / "model" / "README.md").is_file()


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
    # GIVEN what the image installs: its lock, written from the project with the image's extras (a
    # test in test_supply_chain checks the lock covers them), with the packages the lock adds
    spec = IMAGES["gpu"]
    assert "--require-hashes -r requirements.lock" in DOCKERFILE and f"COPY {spec.lock} " in DOCKERFILE
    extras = list(spec.extras)
    also = sorted(lock_entries(REPO / spec.lock))
    assert "onnxruntime-gpu" in also
    # WHEN following every import the service's entry point can reach (adapters chosen at run time too)
    code = reachable_files(REPO / "infra" / "gpu_worker" / "__main__.py", root=REPO)
    # ... each of them copied into the image (infra/ is copied file by file, leaving the model folder out)
    copied = ("shared/", "functions/", "local/", "infra/__init__.py")
    for path in (p.relative_to(REPO) for p in code):
        assert path.as_posix().startswith(copied) or (path.parent.as_posix() == "infra/gpu_worker"), path
    used = used_modules(code, root=REPO)
    # the SQS / Pub/Sub queues and the S3 / GCS stores are among them
    assert {"boto3", "google.cloud.pubsub_v1", "google.cloud.storage"} <= used.keys()
    # THEN each is provided by what the image installs
    assert unprovided(REPO / "pyproject.toml", used, extras=extras, also=also) == {}
