"""Shared fixtures: a real PostgreSQL + pgvector (pgserver), one fresh database per test.

Migrations run once into a template database; each test gets ``CREATE DATABASE … TEMPLATE`` of it,
which takes milliseconds and keeps tests independent.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from shared.config import Settings, load_settings
from shared.services import Services
from shared.store.db import Database
from tests.api_contract import api_contract  # noqa: F401 - autouse: every API answer meets its route's contract

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
# Processes the tests start (functions-framework, the local runtime, workers) import this checkout's
# code, like the test process does, not whatever checkout the venv's editable install points at.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
_counter = itertools.count()


def need(condition: bool, reason: str) -> None:
    """Skip locally when a real part is missing; fail under CI, where everything must be present."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required for CI: {reason}")
    pytest.skip(reason)


def _with_db(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


@contextmanager
def _state_dir() -> Iterator[Path]:
    # Outside pytest's own temp root: pytest resets that root to mode 0700 whenever a session
    # starts, and the embedded server (run as an unprivileged user when we are root) must be able
    # to traverse the path to its data directory.
    path = Path(tempfile.mkdtemp(prefix="contentfn-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A fresh data directory for tests that run the embedded PostgreSQL themselves."""
    with _state_dir() as path:
        yield path


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    external = os.environ.get("CONTENTFN_TEST_DATABASE_URL")
    if external:
        yield external
        return
    import pgserver

    with _state_dir() as path:
        server = pgserver.get_server(path / "pg", cleanup_mode="stop")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> str:
    name = f"contentfn_tpl_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    Database(_with_db(pg_server_url, name)).migrate()
    return name


@pytest.fixture
def database_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    name = f"contentfn_t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _with_db(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def model_dir_path() -> Path:
    configured = os.environ.get("CONTENTFN_MODEL_DIR")
    return Path(configured) if configured else REPO / ".contentfn" / "models" / "all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    path = model_dir_path()
    if not (path / "manifest.json").is_file():
        pytest.fail(f"model files missing under {path}: run `make model` (make test does it first)")
    return path


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        data_dir=tmp_path / "state",
        database_url=database_url,
        model_dir=model_dir_path(),
        queue_backoff_base_s=0.05,
        queue_backoff_cap_s=0.2,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = Services.from_settings(settings)
    try:
        yield svc
    finally:
        svc.close()
