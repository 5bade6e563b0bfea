"""Fixtures for testing cloud entry points: their environment, a Lambda context, functions-framework apps.

Entry points build their own ``Services`` from ``CONTENTFN_*`` variables (as in the cloud), so the
tests set those variables to the per-test database and state folder and close the runtimes after.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.observability.logs import remove_installed_handler
from shared.services import Services
from tests.conftest import REPO

__all__ = [
    "ENTRY_MODULES",
    "TEST_API_KEY",
    "FunctionsFrameworkServer",
    "count",
    "entry_env",
    "entry_environment",
    "ff_client",
    "lambda_context",
    "put_local",
    "sample_jsonl",
    "send_capture",
]

# A cloud runtime's API refuses to start without a key this long (shared.platform.runtime).
TEST_API_KEY = "test-key-of-the-api-in-a-cloud-runtime-0123456789"
# Every function's entry points: each keeps a runtime (and its database pool) per process, which a
# test must close so that the next test's runtime is built against that test's database.
ENTRY_MODULES = sorted(
    f"functions.{path.parent.name}.{path.stem}"
    for path in (REPO / "functions").glob("*/*.py")
    if path.stem in ("aws", "gcp")
)


def sample_jsonl(n: int = 20, *, tag: str = "") -> bytes:
    rows = [
        {"id": f"t{i}{tag}", "artist": f"Artist {i % 5}", "title": f"Song {i}", "lyrics": f"verse {i} {tag}\nchorus"}
        for i in range(n)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def put_local(settings: Settings, bucket: str, key: str, data: bytes) -> Path:
    path = settings.buckets_dir / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def count(services: Services, sql: str, *params: Any) -> int:
    with services.db.connection() as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
        conn.commit()
    return int(row[0]) if row else 0


def _runtimes() -> list[Any]:
    found = []
    for name in [*ENTRY_MODULES, "gcp"]:
        module = sys.modules.get(name)
        runtime = getattr(module, "runtime", None)
        if runtime is not None:
            found.append(runtime)
    return found


@pytest.fixture
def entry_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Point every entry point at this test's database, state folder and model; local blob store."""
    assert settings.database_url is not None
    monkeypatch.setenv("CONTENTFN_DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("CONTENTFN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CONTENTFN_MODEL_DIR", str(settings.resolved_model_dir))
    monkeypatch.setenv("CONTENTFN_BLOB_BACKEND", "local")
    monkeypatch.setenv("CONTENTFN_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("CONTENTFN_QUEUE_BACKOFF_BASE_S", "0.05")
    monkeypatch.setenv("CONTENTFN_QUEUE_BACKOFF_CAP_S", "0.2")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "contentfn-test")
    for runtime in _runtimes():
        runtime.close()
    yield settings
    for runtime in _runtimes():
        runtime.close()
    remove_installed_handler()  # a GCP entry point routed the root logger to stdout as JSON


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext(function_name="contentfn-test", timeout_s=60)


def ff_client(function: str, target: str, signature_type: str) -> Any:
    """A functions-framework test client for ``functions/<function>/gcp.py``, loaded as the framework does."""
    from functions_framework import create_app

    previous = getattr(sys.modules.get("gcp"), "runtime", None)
    if previous is not None:  # the framework loads each source as module "gcp"; close the last one
        previous.close()
    source = REPO / "functions" / function / "gcp.py"
    return create_app(target, str(source), signature_type).test_client()


def send_capture(client: Any, doc: dict[str, Any]) -> Any:
    """Replay an ``events/gcp_*.json`` HTTP capture through a Flask/functions-framework test client."""
    from shared.envelopes.any_cloud import HttpCapture

    req = HttpCapture.from_doc(doc)
    headers = {k: v for k, v in req.headers.items() if k.lower() != "host"}
    return client.open(req.path, method=req.method, query_string=req.query, headers=headers, data=req.body)


class FunctionsFrameworkServer:
    """``functions-framework`` as a real server process (gunicorn, as on Cloud Run)."""

    def __init__(
        self,
        function: str,
        target: str,
        signature_type: str,
        env: dict[str, str],
        log_path: Path,
        *,
        source: Path | None = None,
        cwd: Path = REPO,
        base_env: dict[str, str] | None = None,
    ) -> None:
        """``source`` defaults to ``functions/<function>/gcp.py`` of this checkout; ``env`` is laid
        over ``base_env`` (default: this process's environment)."""
        import os
        import subprocess

        from tests.emulators import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        cmd = [
            str(Path(sys.executable).with_name("functions-framework")),
            "--target", target,
            "--source", str(source or REPO / "functions" / function / "gcp.py"),
            "--signature-type", signature_type,
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip
        base = dict(os.environ) if base_env is None else base_env
        self.proc = subprocess.Popen(cmd, env={**base, **env}, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 30.0) -> FunctionsFrameworkServer:
        import socket
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"functions-framework exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("functions-framework did not start")

    def send(self, doc: dict[str, Any], timeout_s: float = 60.0) -> Any:
        """POST an ``events/gcp_*.json`` capture over real HTTP; returns the httpx response."""
        import httpx

        from shared.envelopes.any_cloud import HttpCapture

        req = HttpCapture.from_doc(doc)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "content-length")}
        return httpx.request(
            req.method,
            self.url + req.path,
            params=req.query or None,
            headers=headers,
            content=req.body,
            timeout=timeout_s,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def entry_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The ``CONTENTFN_*`` variables that point an entry point (or its process) at this test's state."""
    assert settings.database_url is not None
    env = {
        "CONTENTFN_DATABASE_URL": settings.database_url.get_secret_value(),
        "CONTENTFN_DATA_DIR": str(settings.data_dir),
        "CONTENTFN_MODEL_DIR": str(settings.resolved_model_dir),
        "CONTENTFN_BLOB_BACKEND": "local",
        "CONTENTFN_API_KEY": TEST_API_KEY,
    }
    env.update(extra)
    return env
