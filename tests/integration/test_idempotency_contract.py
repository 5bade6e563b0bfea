"""The shared-Postgres idempotency contract every cloud relies on (``shared.idempotency.run_once``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from shared.errors import IdempotencyInProgress
from shared.idempotency import run_once
from shared.services import Services


def _counter() -> tuple[list[int], Any]:
    runs: list[int] = []

    def effect() -> dict[str, Any]:
        runs.append(1)
        return {"n": len(runs)}

    return runs, effect


def test_concurrent_duplicate_is_told_in_progress_and_never_runs_a_second_effect(services: Services) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []
    outcomes: list[str] = []

    def slow_effect() -> dict[str, Any]:
        runs.append("ran")
        started.set()
        release.wait(10)
        return {"ok": True}

    def first() -> None:
        run_once(services.db, "k:concurrent", 60, slow_effect)
        outcomes.append("ran")

    def duplicate() -> None:
        started.wait(10)
        try:
            run_once(services.db, "k:concurrent", 60, slow_effect)
            outcomes.append("ran-again")
        except IdempotencyInProgress:
            outcomes.append("in_progress")
        finally:
            release.set()

    threads = [threading.Thread(target=first), threading.Thread(target=duplicate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["in_progress", "ran"] and runs == ["ran"]
    replay = run_once(services.db, "k:concurrent", 60, slow_effect)
    assert replay.replayed and runs == ["ran"]


def test_in_progress_record_expires_with_the_function_timeout(services: Services) -> None:
    runs, effect = _counter()
    # GIVEN a delivery that died mid-effect (record left in_progress, ttl = function timeout = 3 s)
    with services.db.connection() as conn:
        conn.execute(
            "INSERT INTO idempotency (key, status, expires_at) VALUES ('k:dead', 'in_progress', now() + interval '3 seconds')"
        )
        conn.commit()
    # WHEN redelivered before the timeout THEN retry later; after it THEN the effect runs
    with pytest.raises(IdempotencyInProgress):
        run_once(services.db, "k:dead", 1, effect)
    time.sleep(3.1)
    assert run_once(services.db, "k:dead", 1, effect).result == {"n": 1} and runs == [1]


def test_failure_deletes_the_record_so_the_retry_runs_again(services: Services) -> None:
    runs, effect = _counter()

    def failing() -> dict[str, Any]:
        raise ConnectionError("database restarting")

    with pytest.raises(ConnectionError):
        run_once(services.db, "k:fail", 60, failing)
    assert run_once(services.db, "k:fail", 60, effect).result == {"n": 1}
    assert run_once(services.db, "k:fail", 60, effect).replayed and runs == [1]
