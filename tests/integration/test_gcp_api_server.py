"""The API as functions-framework serves it on Cloud Run: a real server process over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.config import Settings
from tests.entry_fixtures import FunctionsFrameworkServer, entry_environment

KEY = "a-key-long-enough-for-a-cloud-runtime-0123"


@pytest.fixture
def api_server(settings: Settings, tmp_path: Path) -> Any:
    env = entry_environment(settings, CONTENTFN_API_KEY=KEY)
    server = FunctionsFrameworkServer("api", "api", "http", env, tmp_path / "ff-api.log").wait_ready()
    yield server
    server.stop()


def test_api_routes_auth_and_limits_over_real_http(api_server: FunctionsFrameworkServer) -> None:
    url = api_server.url
    assert httpx.get(f"{url}/health", timeout=30).json()["db"] == "ok"
    assert httpx.get(f"{url}/openapi.json", timeout=30).json()["openapi"].startswith("3.")
    assert httpx.get(f"{url}/stats", timeout=30).status_code == 401
    assert httpx.get(f"{url}/stats", headers={"X-Api-Key": KEY}, timeout=30).json()["tracks"] == 0
    missing = httpx.get(f"{url}/nope", timeout=30)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert missing.headers["content-type"] == "application/problem+json"
    big = httpx.post(f"{url}/search", content=b"x" * (1024 * 1024 + 1), timeout=30)
    assert big.status_code == 413 and b"xxx" not in big.content
    assert big.headers["content-type"] == "application/problem+json" and big.json()["status"] == 413
