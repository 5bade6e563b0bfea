"""Database faults on the real embedded PostgreSQL: the server is stopped (as a crash would, with
``pg_ctl stop -m immediate``) and started again under a running API server and a running worker.

Each test runs its own server, so stopping it touches no other test's database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from functions.api.core import Api
from functions.ingest.core import handle_object_created
from local.roles import services_when_reachable
from local.server import ApiServer
from local.workers import EmbedWorker
from shared.config import load_settings
from shared.events import ObjectCreated
from shared.services import Services
from shared.store.db import Database, DatabaseUnavailable
from tests.conftest import REPO, model_dir_path


@dataclass
class Restartable:
    """An embedded server this test may stop and start; ``url`` names a migrated database on it."""

    server: Any
    socket_dir: Path
    url: str
    running: bool = True

    def stop(self) -> None:
        from pgserver._commands import pg_ctl

        self.running = False
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        from pgserver._commands import pg_ctl

        # The options pgserver starts it with: no TCP listener, the socket where the URL points.
        args = ["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log), "start"]
        pg_ctl(args, pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)
        self.running = True


@pytest.fixture
def restartable(state_dir: Path) -> Iterator[Restartable]:
    import pgserver

    server = pgserver.get_server(state_dir / "pg", cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    assert socket_dir is not None
    url = str(server.get_uri())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE faults")
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = "faults"
    db_url = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})
    Database(db_url).migrate()
    fixture = Restartable(server, socket_dir, db_url)
    try:
        yield fixture
    finally:
        if not fixture.running:
            fixture.start()  # cleanup stops it the ordinary way
        server.cleanup()


def _services(restartable: Restartable, state_dir: Path, **overrides: Any) -> Services:
    settings = load_settings(
        data_dir=state_dir / "state",
        database_url=restartable.url,
        model_dir=model_dir_path(),
        db_connect_timeout_s=2,
        db_pool_timeout_s=1.0,
        **overrides,
    )
    return Services.from_settings(settings)


def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)


def test_api_answers_503_with_retry_after_while_the_database_is_down_and_recovers_without_restart(
    restartable: Restartable, state_dir: Path
) -> None:
    # GIVEN an API server whose pool holds connections to a running database
    services = _services(restartable, state_dir)
    srv = ApiServer(Api(services), "127.0.0.1", 0)
    srv.start()
    base = f"http://127.0.0.1:{srv.port}"
    try:
        assert httpx.get(f"{base}/stats", timeout=30).status_code == 200
        assert httpx.get(f"{base}/tracks/1", timeout=30).status_code == 404
        # Every operation that may touch the database declares the 503 in the document (only the
        # pages and files served from memory do not).
        document = httpx.get(f"{base}/openapi.json", timeout=30).json()
        from_memory = ("/docs", "/console", "/openapi.json")
        checked = 0
        for path, operations in document["paths"].items():
            if path == "/" or path.startswith(from_memory):
                continue
            for method, operation in operations.items():
                assert "503" in operation["responses"], (method, path)
                checked += 1
        assert checked >= 10

        # WHEN the database crashes (its pooled connections die with it)
        restartable.stop()

        # THEN every request that needs it is refused as retryable, never as an internal error
        for path in ("/stats", "/tracks/1", "/stats"):
            started = time.monotonic()
            resp = httpx.get(f"{base}{path}", timeout=30)
            assert resp.status_code == 503, (path, resp.status_code, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            assert int(resp.headers["retry-after"]) > 0
            assert resp.json()["code"] == "unavailable"
            assert time.monotonic() - started < 10  # bounded by the pool and connect timeouts

        # WHEN it comes back, THEN the same process answers again by itself
        restartable.start()
        _until(lambda: httpx.get(f"{base}/stats", timeout=30).status_code == 200, 30, "/stats answers 200")
        assert httpx.get(f"{base}/tracks/1", timeout=30).status_code == 404
    finally:
        srv.stop()
        services.close()


def test_worker_backs_off_while_claims_fail_and_resumes_after_the_database_returns(
    restartable: Restartable, state_dir: Path
) -> None:
    # GIVEN a running embed worker over a running database
    services = _services(restartable, state_dir, worker_poll_s=0.05, worker_failure_backoff_cap_s=0.8)
    worker = EmbedWorker(services)
    worker.start()
    try:
        # WHEN the database crashes
        restartable.stop()
        # THEN its claims fail and it pauses longer after each failure instead of spinning
        _until(lambda: worker.failures >= 3, 30, "three failed claims in a row")
        counted = worker.failures
        time.sleep(2.0)
        # At the poll rate 2 s would be ~40 tries; with the backoff capped at 0.8 s at most a few.
        assert worker.failures - counted <= 6

        # WHEN the database returns and a file is ingested
        restartable.start()
        body = json.dumps({"id": 1, "artist": "A", "title": "T", "lyrics": "waves on the open sea"}) + "\n"
        info = services.blob.put(services.settings.bucket, "after.jsonl", body.encode())

        def ingested() -> bool:
            try:
                handle_object_created(
                    ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services
                )
            except Exception:
                return False  # the pool may still be reconnecting
            return True

        _until(ingested, 30, "the ingest succeeds")

        # THEN the same worker embeds it without being restarted
        def embedded() -> int:
            with services.db.connection() as conn:
                row = conn.execute("SELECT count(*) FROM embeddings").fetchone()
            return int(row[0]) if row else 0

        _until(lambda: embedded() == 1, 120, "the track is embedded")
        assert worker.failures == 0
    finally:
        worker.stop()
        services.close()


def _role_process(restartable: Restartable, state_dir: Path, log_path: Path, *roles: str) -> subprocess.Popen[bytes]:
    """``contentfn local worker ROLES`` over the restartable database, its output in ``log_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFN_")}
    env.update(
        CONTENTFN_DATABASE_URL=restartable.url,
        CONTENTFN_DATA_DIR=str(state_dir / "state"),
        CONTENTFN_MODEL_DIR=str(model_dir_path()),
        CONTENTFN_DB_CONNECT_TIMEOUT_S="2",
        CONTENTFN_WORKER_POLL_S="0.1",
        CONTENTFN_WORKER_FAILURE_BACKOFF_CAP_S="1",
    )
    with log_path.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "local.cli", "local", "worker", *roles],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _until_retrying(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    def retrying_or_exited() -> bool:
        return proc.poll() is not None or "retrying" in log_path.read_text(errors="replace")

    _until(retrying_or_exited, 15, "a retry line in the log")


def test_role_process_started_while_the_database_is_down_waits_for_it_then_runs_its_role(
    restartable: Restartable, state_dir: Path
) -> None:
    # GIVEN the database is down (a restart in progress) when a role process starts
    restartable.stop()
    settings = load_settings(data_dir=state_dir / "state", database_url=restartable.url)
    log_path = state_dir / "watcher.log"
    proc = _role_process(restartable, state_dir, log_path, "watcher")
    try:
        # WHEN the database comes back a few seconds later
        _until_retrying(proc, log_path)
        time.sleep(1.0)
        assert proc.poll() is None, log_path.read_text(errors="replace")  # it waits instead of exiting
        restartable.start()

        # THEN the same process comes up and does its work: a file put in the bucket is ingested
        bucket = settings.buckets_dir / settings.bucket
        _until(lambda: bucket.is_dir(), 15, "the role process made the bucket folder")
        body = json.dumps({"id": 7, "artist": "A", "title": "T", "lyrics": "a harbour at dawn"}) + "\n"
        (bucket / "late.jsonl").write_text(body)

        def tracks() -> int:
            with psycopg.connect(restartable.url) as conn:
                row = conn.execute("SELECT count(*) FROM tracks").fetchone()
            return int(row[0]) if row else 0

        _until(lambda: tracks() == 1, 20, "the watcher ingests the file")
        assert proc.poll() is None, log_path.read_text(errors="replace")
        text = log_path.read_text(errors="replace")
        assert "database not reachable" in text
        assert "roles watcher running" in text
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0, log_path.read_text(errors="replace")


def test_role_process_waiting_for_the_database_stops_cleanly_on_sigterm(
    restartable: Restartable, state_dir: Path
) -> None:
    # GIVEN a role process waiting for a database that is down
    restartable.stop()
    log_path = state_dir / "index.log"
    proc = _role_process(restartable, state_dir, log_path, "index")
    try:
        _until_retrying(proc, log_path)
        assert proc.poll() is None, log_path.read_text(errors="replace")
        # WHEN the supervisor stops it
        proc.terminate()
        # THEN it leaves at once with success, having started nothing
        assert proc.wait(10) == 0, log_path.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log_path.read_text(errors="replace")
    assert "stopped while waiting for the database" in text
    assert "running" not in text


def test_startup_gives_up_with_database_unavailable_once_the_wait_is_spent(
    restartable: Restartable, state_dir: Path
) -> None:
    # GIVEN a database that stays down
    restartable.stop()
    settings = load_settings(
        data_dir=state_dir / "state",
        database_url=restartable.url,
        db_connect_timeout_s=2,
        worker_poll_s=0.1,
        worker_failure_backoff_cap_s=0.5,
    )
    # WHEN a role process's startup waits for it, THEN it gives up after its bound with the last error
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match=r"not reachable after .* at startup: OperationalError"):
        services_when_reachable(settings, threading.Event(), wait_s=1.5)
    assert time.monotonic() - started < 5
