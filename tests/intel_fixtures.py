"""Fixtures for scrape/enrich/analyze tests: a real redis-server, the local test HTTP servers and
settings that let the safe HTTP client reach them (loopback allowlisted, as production never is).

Import what a module needs: ``from tests.intel_fixtures import redis_url  # noqa: F401``.
A missing ``redis-server`` skips locally and fails under CI (``tests.conftest.need``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings, load_settings
from shared.services import Services
from tests.conftest import REPO, model_dir_path, need
from tests.emulators import free_port
from tests.servers.llm_server import LlmServer
from tests.servers.source_server import SourceServer
from tests.servers.spotify_server import SpotifyServer

__all__ = [
    "RedisProcess",
    "intel_services",
    "llm_server",
    "make_intel_settings",
    "need_redis_server",
    "redis_url",
    "sample_rows",
    "source_server",
    "spotify_server",
    "start_redis",
]


def sample_rows(n: int | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (REPO / "local" / "data" / "sample_tracks.jsonl").open()]
    return rows if n is None else rows[:n]


class RedisProcess:
    """One redis-server on a loopback port, without persistence; ``stop()``/``start()`` at will."""

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.binary = binary
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisProcess:
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def need_redis_server() -> None:
    """Skip the test locally, or fail it under CI, when ``redis-server`` is not on PATH."""
    need(shutil.which("redis-server") is not None, "redis-server is not installed (apt-get install redis-server)")


def start_redis() -> RedisProcess:
    """A started redis-server on a free port; called from a test, a missing binary skips (fails in CI)."""
    need_redis_server()
    return RedisProcess().start()


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisProcess]:
    proc = start_redis()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def redis_url(redis_session: RedisProcess) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_session.url)
    client.flushall()
    client.close()
    return redis_session.url


@pytest.fixture
def source_server() -> Iterator[SourceServer]:
    with SourceServer(sample_rows(24), per_page=4) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def llm_server() -> Iterator[LlmServer]:
    with LlmServer() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def spotify_server() -> Iterator[SpotifyServer]:
    catalogue = [
        {"name": f"{r['title']} - Remastered 2011", "artists": [r["artist"].removeprefix("The ")]}
        for r in sample_rows(24)
    ]
    with SpotifyServer(catalogue) as server:
        yield server  # type: ignore[misc]


def make_intel_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "state",
        "database_url": database_url,
        "model_dir": model_dir_path(),
        "queue_backoff_base_s": 0.05,
        "queue_backoff_cap_s": 0.2,
        "http_allow_networks": ["127.0.0.1/32"],
        "http_backoff_base_s": 0.05,
        "http_backoff_cap_s": 0.2,
        "http_rate_per_host": 200.0,
        "http_burst_per_host": 50,
        "llm_timeout_s": 2.0,
        "llm_breaker_reset_s": 0.5,
        "llm_breaker_failures": 3,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def intel_services(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Services]]:
    """A factory: ``intel_services(**settings_overrides)`` → Services (closed after the test)."""
    made: list[Services] = []

    def make(**overrides: Any) -> Services:
        svc = Services.from_settings(make_intel_settings(tmp_path, database_url, **overrides))
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.close()
