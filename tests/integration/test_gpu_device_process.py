"""One process owns the device (``CONTENTFN_GPU_DEVICE_PROCESS``): pipelines send it batches through
shared memory. Its answers are the local session's; the service drains every image once through it;
killing it loses nothing (calls fail, jobs are retried, it is restarted and the pipelines reconnect).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from infra.gpu_worker.device import DeviceAddress, RemoteDetector, device_usage, serve_device
from shared.config import Settings
from shared.services import Services
from shared.vision.detector import load_detector
from tests.integration.test_gpu_worker_crash import counts, queue_images, wait_until
from tests.integration.test_gpu_worker_pool import Service, assert_every_image_done_once
from tests.vision_fixtures import tiny_model

pytestmark = pytest.mark.slow


@pytest.fixture
def device(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, DeviceAddress]]:
    model_settings = settings.model_copy(update={"detector_model_path": tiny_model(tmp_path / "tiny.onnx")})
    address = DeviceAddress.fresh()
    ctx = mp.get_context("spawn")
    ready, ready_child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=serve_device, args=(model_settings, address, ready_child), daemon=True)
    proc.start()
    assert ready.poll(60), "the device process did not get ready"
    assert ready.recv()["provider"] == "CPUExecutionProvider"
    try:
        yield model_settings, address
    finally:
        proc.kill()
        proc.join(10)
        Path(address.path).unlink(missing_ok=True)


def test_remote_calls_give_the_local_sessions_answers(device: tuple[Settings, DeviceAddress]) -> None:
    settings, address = device
    local = load_detector(settings)
    remote = RemoteDetector(settings, address)
    try:
        size = remote.input_size
        rng = np.random.default_rng(3)
        batch = remote.host_buffer((4, size, size, 3))  # shared memory the device process maps once
        out = remote.output_buffer(4)
        batch[:3] = rng.integers(0, 255, (3, size, size, 3), dtype=np.uint8)
        # a batch in mapped buffers: the answer lands in the caller's output buffer
        got = remote.run_raw(batch[:3], out=out)
        assert got.ctypes.data == out.ctypes.data and len(got) == 3
        np.testing.assert_array_equal(got, local.run_raw(batch[:3]))
        # a plain array (a stream's frames, say) is staged through shared memory, with or without out
        plain = rng.integers(0, 255, (2, size, size, 3), dtype=np.uint8)
        np.testing.assert_array_equal(remote.run_raw(plain), local.run_raw(plain))
        np.testing.assert_array_equal(remote.run_raw(plain, out=np.empty_like(out)), local.run_raw(plain))
        assert remote.provider == "CPUExecutionProvider" and remote.layout == local.layout
    finally:
        remote.close()


def _device_mappings() -> int:
    """How many memfd batch blocks this test's child processes (the device process) have mapped."""
    maps = "".join(Path(f"/proc/{p.pid}/maps").read_text() for p in mp.active_children())
    return maps.count("memfd:contentfn-gpu-batch")


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux-only; elsewhere POSIX shared memory")
def test_batch_buffers_reach_the_device_process_as_memfds_without_dev_shm(
    device: tuple[Settings, DeviceAddress],
) -> None:
    settings, address = device
    shm_before = set(os.listdir("/dev/shm"))
    remote = RemoteDetector(settings, address)
    try:
        # GIVEN a batch and an output buffer made by the pipeline
        size = remote.input_size
        batch = remote.host_buffer((2, size, size, 3))
        out = remote.output_buffer(2)
        batch[:] = np.random.default_rng(5).integers(0, 255, batch.shape, dtype=np.uint8)
        # THEN the device process maps both as memfds, and nothing was made in /dev/shm
        assert _device_mappings() == 2
        usage = device_usage(address)
        assert usage is not None and (usage["blocks"], usage["pinned_blocks"]) == (2, 0)  # CPU: nothing to lock
        assert set(os.listdir("/dev/shm")) == shm_before
        # AND what the pipeline wrote is what the device process reads
        np.testing.assert_array_equal(remote.run_raw(batch, out=out), load_detector(settings).run_raw(batch))
    finally:
        remote.close()
    # AND once the pipeline lets them go, the device process unmaps them
    end = time.monotonic() + 10
    while _device_mappings() and time.monotonic() < end:
        time.sleep(0.05)
    assert _device_mappings() == 0
    after = device_usage(address)
    assert after is not None and after["blocks"] == 0


def test_a_silent_or_unauthenticated_client_holds_up_no_one(device: tuple[Settings, DeviceAddress]) -> None:
    from multiprocessing import AuthenticationError
    from multiprocessing.connection import Client

    _, address = device
    # GIVEN a client that connects and never answers the handshake
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(address.path)
    try:
        # WHEN another connects with the right key
        got: list[dict[str, object] | None] = []
        asking = threading.Thread(target=lambda: got.append(device_usage(address, timeout_s=5)))
        asking.start()
        asking.join(20)
        # THEN it is served at once, the silent one still pending
        assert not asking.is_alive(), "a client that never answered held up the next one"
        assert got and got[0] is not None and got[0]["calls"] == 0
        # and one with the wrong key is refused
        with pytest.raises(AuthenticationError):
            Client(address.path, family="AF_UNIX", authkey=b"not the key")
    finally:
        silent.close()
    assert (os.stat(address.path).st_mode & 0o777) == 0o600  # the instance's own user only


def test_a_call_fails_clearly_while_the_device_process_is_gone_and_works_once_it_is_back(
    settings: Settings, tmp_path: Path
) -> None:
    model_settings = settings.model_copy(update={"detector_model_path": tiny_model(tmp_path / "tiny.onnx")})
    address = DeviceAddress.fresh()
    ctx = mp.get_context("spawn")

    def start() -> mp.process.BaseProcess:
        ready, ready_child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=serve_device, args=(model_settings, address, ready_child), daemon=True)
        proc.start()
        assert ready.poll(60)
        ready.recv()
        return proc

    first = start()
    remote = RemoteDetector(model_settings, address)
    pixels = remote.host_buffer((1, remote.input_size, remote.input_size, 3))
    expected = remote.run_raw(pixels)
    first.kill()
    first.join(10)
    with pytest.raises(RuntimeError, match="device process is unavailable"):
        remote.run_raw(pixels)
    second = start()
    try:
        np.testing.assert_array_equal(remote.run_raw(pixels), expected)  # reconnected, buffers mapped anew
    finally:
        remote.close()
        second.kill()
        second.join(10)
        Path(address.path).unlink(missing_ok=True)


@pytest.mark.parametrize("limit", [1, 2])
def test_the_device_process_runs_at_most_its_call_limit_at_once_and_counts_every_call(
    settings: Settings, tmp_path: Path, limit: int
) -> None:
    slow = tiny_model(tmp_path / "slow.onnx", size=256, work=8)
    model_settings = settings.model_copy(update={"detector_model_path": slow, "gpu_device_calls": limit})
    address = DeviceAddress.fresh()
    ctx = mp.get_context("spawn")
    ready, ready_child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=serve_device, args=(model_settings, address, ready_child), daemon=True)
    proc.start()
    assert ready.poll(60)
    ready.recv()
    remotes = [RemoteDetector(model_settings, address) for _ in range(3)]
    try:
        before = device_usage(address)
        assert before is not None and before["calls"] == 0 and before["call_limit"] == limit
        errors: list[BaseException] = []

        def call_many(remote: RemoteDetector) -> None:
            try:
                pixels = remote.host_buffer((4, 256, 256, 3))
                for _ in range(15):
                    assert len(remote.run_raw(pixels)) == 4
            except BaseException as exc:  # reported below: a thread's failure must fail the test
                errors.append(exc)

        # WHEN three pipelines call at once, 15 batches of 4 each
        threads = [threading.Thread(target=call_many, args=(r,)) for r in remotes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        usage = device_usage(address)
        # THEN every call is counted, no more than the limit ran at once, and calls overlapped up to it
        assert usage is not None
        assert usage["calls"] == 45 and usage["images"] == 180 and usage["running"] == 0
        assert usage["peak_running"] == limit
        assert usage["busy_s"] > 0
    finally:
        for r in remotes:
            r.close()
        proc.kill()
        proc.join(10)
        Path(address.path).unlink(missing_ok=True)
    assert device_usage(address) is None  # nothing listens there any more


@pytest.fixture
def service(services: Services, settings: Settings, tmp_path: Path) -> Iterator[Service]:
    queue_images(services)
    # Slow enough per image that the run is still going when the service is up and a test acts on it.
    running = Service(
        settings, tiny_model(tmp_path / "slow.onnx", size=256, work=16), CONTENTFN_GPU_DEVICE_PROCESS="true"
    )
    try:
        yield running
    finally:
        running.close()


def test_two_pipelines_do_every_image_once_through_one_device_process(services: Services, service: Service) -> None:
    health = service.get("/healthz").json()
    assert health["device_process"] == "up" and health["processes_up"] == 2
    assert len(service.pipelines()) == 3  # two pipelines and the device process
    wait_until(services, lambda c: c["queued"] == 0)
    health = service.get("/healthz").json()
    assert health["device_calls"] > 0 and health["device_busy_s"] > 0
    # each pipeline's batch buffers (at least its in-flight batch and the one it fills) and its output
    assert health["device_buffers"] >= 2 * 3 and health["device_buffers_page_locked"] == 0  # CPU: none locked
    assert 0 <= health["device_shape_changes"] <= health["device_calls"]
    metrics = service.get("/metrics").text
    assert "contentfn_gpu_device_calls_total" in metrics and "contentfn_gpu_device_shape_changes_total" in metrics
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(40) == 0
    assert service.pipelines() == []
    assert_every_image_done_once(services)


def test_a_killed_device_process_is_restarted_and_loses_nothing(services: Services, service: Service) -> None:
    device_pid = service.get("/healthz").json()["device_pid"]
    wait_until(services, lambda c: c["done"] >= 8 and c["queued"] + c["leased"] > 0)
    # WHEN the device process is killed with SIGKILL while pipelines are calling it
    os.kill(device_pid, signal.SIGKILL)
    # THEN calls fail and their jobs are retried, the parent starts it again, the pipelines reconnect
    wait_until(services, lambda c: c["queued"] == 0 and c["leased"] == 0, timeout=120)
    health = service.get("/healthz").json()
    assert health["device_process"] == "up" and health["device_pid"] != device_pid
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(40) == 0
    assert_every_image_done_once(services)
    assert counts(services)["dead"] == 0


def test_a_batch_buffer_that_shared_memory_cannot_hold_is_refused_by_name(tmp_path: Path) -> None:
    from infra.gpu_worker.device import _check_shm_room
    from shared.errors import ConfigError

    _check_shm_room(1, str(tmp_path))  # room enough
    with pytest.raises(ConfigError, match="shm-size"):
        _check_shm_room(1 << 62, str(tmp_path))


def test_a_pipeline_killed_mid_call_leaves_the_device_process_serving(services: Services, service: Service) -> None:
    device_pid = service.get("/healthz").json()["device_pid"]
    pipelines = [p for p in service.pipelines() if p != device_pid]
    wait_until(services, lambda c: c["done"] >= 8 and c["leased"] > 0)
    # WHEN a pipeline process is killed with SIGKILL while it has calls and leases out
    os.kill(pipelines[0], signal.SIGKILL)
    # THEN the same device process serves the restarted pipeline, and every image is done once
    wait_until(services, lambda c: c["queued"] == 0 and c["leased"] == 0, timeout=120)
    health = service.get("/healthz").json()
    assert health["device_process"] == "up" and health["device_pid"] == device_pid
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(40) == 0
    assert_every_image_done_once(services)
