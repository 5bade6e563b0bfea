"""The shared-Postgres idempotency contract every cloud relies on (``shared.idempotency.run_once``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from shared.errors import IdempotencyClaimLost, IdempotencyInProgress
from shared.idempotency import Claim, in_progress_ttl_s, run_claimed, run_once
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


def test_in_progress_lifetime_is_just_past_the_function_timeout_when_the_platform_tells_it() -> None:
    # GIVEN a 300 s Lambda timeout (Terraform passes it) THEN a claim outlives it only by a margin
    assert 300 < in_progress_ttl_s(300, default_s=900) < 310
    # AND without a timeout the configured lifetime stands
    assert in_progress_ttl_s(None, default_s=900) == 900


def test_a_delivery_whose_claim_was_taken_over_cannot_commit_its_effect(services: Services) -> None:
    with services.db.connection() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS effect_rows (key text)")
        conn.commit()
    taken_over = threading.Event()
    second: list[Any] = []

    def slow_effect(claim: Claim) -> dict[str, Any]:
        # GIVEN a delivery that outlives its 1 s claim; a retry takes the claim over and finishes
        time.sleep(1.2)
        second.append(run_claimed(services.db, "k:owner", 60, fast_effect))
        taken_over.set()
        with services.db.connection() as conn:
            conn.execute("INSERT INTO effect_rows VALUES ('slow')")
            claim.complete(conn, {"by": "slow"})
            conn.commit()
        return {"by": "slow"}

    def fast_effect(claim: Claim) -> dict[str, Any]:
        with services.db.connection() as conn:
            conn.execute("INSERT INTO effect_rows VALUES ('fast')")
            claim.complete(conn, {"by": "fast"})
            conn.commit()
        return {"by": "fast"}

    # WHEN the first delivery then tries to complete THEN it is refused and its effect rolls back
    with pytest.raises(IdempotencyClaimLost):
        run_claimed(services.db, "k:owner", 1, slow_effect)
    assert taken_over.is_set() and second[0].result == {"by": "fast"}
    with services.db.connection() as conn:
        assert conn.execute("SELECT key FROM effect_rows").fetchall() == [("fast",)]
        row = conn.execute("SELECT status, result FROM idempotency WHERE key = 'k:owner'").fetchone()
        conn.commit()
    # AND the failed delivery did not clear the record of the one that took over
    assert row == ("done", {"by": "fast"})
    assert run_once(services.db, "k:owner", 60, lambda: {"by": "third"}).replayed


def test_a_failing_delivery_clears_only_its_own_claim_not_one_taken_over(services: Services) -> None:
    def failing(claim: Claim) -> dict[str, Any]:
        # GIVEN a delivery whose claim expired and was taken over by one still running
        time.sleep(1.2)
        with services.db.connection() as conn:
            conn.execute("UPDATE idempotency SET owner = 'another', expires_at = now() + interval '60 s'")
            conn.commit()
        raise ConnectionError("lost the database")

    # WHEN the first delivery fails THEN the other's in-progress claim stays
    with pytest.raises(ConnectionError):
        run_claimed(services.db, "k:clear", 1, failing)
    with services.db.connection() as conn:
        row = conn.execute("SELECT status, owner FROM idempotency WHERE key = 'k:clear'").fetchone()
        conn.commit()
    assert row == ("in_progress", "another")
    with pytest.raises(IdempotencyInProgress):
        run_once(services.db, "k:clear", 60, lambda: {"n": 1})
