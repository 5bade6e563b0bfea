"""The GPU service with several pipeline processes: the cap is split, every image is done once, and
killing a pipeline or its parent loses nothing and duplicates nothing.

The service runs as a real subprocess (``python -m infra.gpu_worker``) supervising real pipeline
processes, against a real PostgreSQL; /healthz and /metrics are read over HTTP.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.gpu_worker.pool import in_flight_shares
from shared.config import Settings
from shared.services import Services
from tests.conftest import REPO
from tests.integration.test_gpu_worker_crash import N_IMAGES, counts, queue_images, wait_until, worker_env
from tests.vision_fixtures import TINY_BOXES_PER_IMAGE, metric_samples, tiny_model

pytestmark = pytest.mark.slow


class Service:
    """``python -m infra.gpu_worker`` with two pipeline processes; ``port`` read from its ready line."""

    def __init__(self, settings: Settings, model: Path, **extra_env: str) -> None:
        # two pipelines splitting two batches in flight, one decode and one model thread each
        env = worker_env(
            settings,
            model,
            CONTENTFN_GPU_PROCESSES="2",
            CONTENTFN_GPU_DECODE_THREADS="1",
            CONTENTFN_DETECTOR_THREADS="1",
            **extra_env,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "infra.gpu_worker", "--no-streams"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until every pipeline has loaded its model
        match = re.search(r"gpu-worker ready port=(\d+) processes=(\d+)", line)
        assert match, f"no ready line from the GPU service: {line!r}"
        self.port, self.processes = int(match[1]), int(match[2])

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def pipelines(self) -> list[int]:
        """Pids of the pipeline processes (children running the multiprocessing entry point)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                    found.append(int(stat.parent.name))
            except (OSError, IndexError, ValueError):
                continue  # exited while being read
        return found

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit may be reaped late where PID 1 is not an init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def done_by_process(metrics: str) -> dict[str, float]:
    samples = metric_samples(metrics, "contentfn_gpu_images_total")
    return {labels["process"]: v for labels, v in samples if labels["outcome"] == "done"}


@pytest.fixture
def service(services: Services, settings: Settings, tmp_path: Path) -> Iterator[Service]:
    """96 queued images, then the service started with two pipeline processes on a slow tiny model."""
    queue_images(services)
    # Slow enough per image that the run is still going when the service is up and a test acts on it.
    running_service = Service(settings, tiny_model(tmp_path / "slow.onnx", size=256, work=16))
    try:
        yield running_service
    finally:
        running_service.close()


def assert_every_image_done_once(svc: Services) -> None:
    final = counts(svc)
    assert final["done"] == N_IMAGES
    assert final["detections"] == final["distinct"] == N_IMAGES * TINY_BOXES_PER_IMAGE
    assert final["dead"] == 0


def test_in_flight_batches_are_split_without_raising_the_cap() -> None:
    assert in_flight_shares(8, 4) == [2, 2, 2, 2]
    assert in_flight_shares(5, 2) == [3, 2]
    assert sum(in_flight_shares(7, 3)) == 7


def test_two_pipelines_share_the_queue_and_do_every_image_once(services: Services, service: Service) -> None:
    # GIVEN 96 queued images and the service started with two pipeline processes
    assert service.processes == 2 and len(service.pipelines()) == 2
    health = service.get("/healthz").json()
    assert health["processes"] == 2 and health["processes_up"] == 2
    assert health["max_in_flight_images"] == 2 * 4  # the instance's cap, not twice it
    assert health["malloc_keep_mib"] == 512  # the pipelines keep freed memory (CONTENTFN_GPU_MALLOC_KEEP_MIB)
    # WHEN they drain the queue
    wait_until(services, lambda c: c["queued"] == 0)
    time.sleep(1.0)  # one report interval: the parent has every pipeline's latest figures
    metrics = service.get("/metrics").text
    # THEN both pipelines did work and /metrics shows one series per process
    done = done_by_process(metrics)
    assert set(done) == {"0", "1"} and all(v > 0 for v in done.values()), done
    assert sum(done.values()) == N_IMAGES
    # AND the store's figures beside them, which the cloud's scrapers collect from this service
    assert 'contentfn_queue_depth{kind="detect"} 0.0' in metrics
    assert 'contentfn_dead_letters{kind="detect"} 0.0' in metrics
    assert "contentfn_llm_budget_used_ratio 0.0" in metrics
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(40) == 0
    assert service.pipelines() == []
    assert_every_image_done_once(services)


def test_a_killed_pipeline_is_restarted_and_loses_nothing(services: Services, service: Service) -> None:
    first = service.pipelines()
    wait_until(services, lambda c: c["done"] >= 8 and c["leased"] > 0)
    # WHEN one pipeline process is killed with SIGKILL mid-batch
    os.kill(first[0], signal.SIGKILL)
    # THEN the parent starts another, every job ends done once (the dead one's leases expire)
    wait_until(services, lambda c: c["queued"] == 0, timeout=120)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and service.get("/healthz").json()["processes_up"] < 2:
        time.sleep(0.2)
    assert service.get("/healthz").json()["processes_up"] == 2
    again = service.pipelines()
    assert len(again) == 2 and first[0] not in again
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(40) == 0
    assert_every_image_done_once(services)


def test_pipelines_drain_when_their_parent_is_killed(services: Services, service: Service) -> None:
    pipelines = service.pipelines()
    wait_until(services, lambda c: c["done"] >= 4 and c["leased"] > 0)
    # WHEN the supervising process is killed with SIGKILL
    service.proc.send_signal(signal.SIGKILL)
    service.proc.wait(10)
    # THEN its pipelines notice, finish or release what they hold, and exit
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and any(running(p) for p in pipelines):
        time.sleep(0.1)
    assert len(pipelines) == 2 and not any(running(p) for p in pipelines)
    c = counts(services)
    assert c["leased"] == 0
    assert c["done"] + c["queued"] == N_IMAGES
    assert c["detections"] == c["done"] * TINY_BOXES_PER_IMAGE


def test_process_count_follows_the_host_and_never_raises_the_cap(settings: Settings) -> None:
    from infra.gpu_worker.pool import auto_processes, cpu_count

    gpu = ("CUDAExecutionProvider", "CPUExecutionProvider")
    cpu_only = settings.model_copy(update={"detector_providers": ("CPUExecutionProvider",), "gpu_max_in_flight": 16})
    assert auto_processes(cpu_only) == 1  # on CPU the model already uses every core
    on_gpu = settings.model_copy(update={"detector_providers": gpu, "gpu_max_in_flight": 64})
    assert auto_processes(on_gpu) == max(1, cpu_count() // 4)
    # two batches in flight per process at least, so a cap of 2 keeps one process
    assert auto_processes(on_gpu.model_copy(update={"gpu_max_in_flight": 2})) == 1
    explicit = settings.model_copy(update={"gpu_processes": 8, "gpu_max_in_flight": 3})
    assert auto_processes(explicit) == 3
