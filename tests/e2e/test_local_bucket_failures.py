"""Local runtime: no uploaded object, however broken, stops the bucket watcher from taking the next one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from local.runtime import LocalStack
from shared.config import Settings
from shared.services import Services
from tests.conftest import REPO

pytestmark = pytest.mark.slow

GOOD = {"artist": "Saltglass", "title": "Evening Tide", "lyrics": "carry me home across the water"}


def upload(file: Path, settings: Settings) -> None:
    """``contentfn upload FILE``, as a user runs it beside the running stack."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONTENTFN_")},
        "CONTENTFN_DATA_DIR": str(settings.data_dir),
        "CONTENTFN_DATABASE_URL": settings.database_url.get_secret_value() if settings.database_url else "",
    }
    done = subprocess.run(
        [sys.executable, "-m", "local.cli", "upload", str(file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def ledger_row(services: Services, subject: str) -> tuple[str, str | None, dict[str, Any]] | None:
    with services.db.connection() as conn:
        row = conn.execute("SELECT status, last_error, detail FROM ledger WHERE subject = %s", (subject,)).fetchone()
        conn.commit()
    return None if row is None else (row[0], row[1], row[2])


def wait_for_ledger(services: Services, subject: str, timeout_s: float) -> tuple[str, str | None, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = ledger_row(services, subject)
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"{subject} not in the ledger after {timeout_s} s")


def test_jsonl_with_a_line_of_a_hundred_thousand_brackets_lands_its_good_lines_and_the_next_upload_follows(
    settings: Settings, model_dir: Path, tmp_path: Path
) -> None:
    # GIVEN the running local stack and a .jsonl whose middle line is 100,000 "["
    local = settings.model_copy(update={"api_port": 0, "worker_poll_s": 0.1})
    bomb = tmp_path / "bomb.jsonl"
    bomb.write_bytes(
        json.dumps({**GOOD, "id": "first"}).encode()
        + b"\n"
        + b"[" * 100_000
        + b"\n"
        + json.dumps({**GOOD, "id": "last"}).encode()
        + b"\n"
    )
    after = tmp_path / "after.jsonl"
    after.write_text(json.dumps({**GOOD, "id": "after", "title": "Low Water"}) + "\n")
    with LocalStack(local) as stack:
        assert stack.services is not None
        # WHEN it is uploaded
        upload(bomb, local)
        status, error, report = wait_for_ledger(stack.services, f"object:{local.bucket}/bomb.jsonl", 60)
        # THEN its two good lines land and the bad one is reported with the reason
        assert (status, report["rows_ok"], report["rows_bad"]) == ("partial", 2, 1)
        assert report["bad_rows"] == [{"line": 2, "reason": "not accepted JSON: nesting is deeper than 64 levels"}]
        assert error is not None and "nesting is deeper than 64 levels" in error
        # AND a good file uploaded after it is ingested within seconds
        uploaded_at = time.monotonic()
        upload(after, local)
        status, _, report = wait_for_ledger(stack.services, f"object:{local.bucket}/after.jsonl", 10)
        assert (status, report["rows_ok"]) == ("ok", 1)
        assert time.monotonic() - uploaded_at < 10
        with stack.services.db.connection() as conn:
            ids = {r[0] for r in conn.execute("SELECT source_id FROM tracks").fetchall()}
            conn.commit()
        assert ids == {"first", "last", "after"}


def test_object_whose_ingest_keeps_failing_is_retried_then_dead_lettered_while_the_next_is_ingested(
    settings: Settings, model_dir: Path, tmp_path: Path
) -> None:
    # GIVEN the running local stack trying a failing object 3 times, 0.2 to 0.4 s apart
    local = settings.model_copy(
        update={
            "api_port": 0,
            "worker_poll_s": 0.05,
            "bucket_max_attempts": 3,
            "bucket_backoff_base_s": 0.4,
            "bucket_backoff_cap_s": 0.8,
        }
    )
    folder = local.buckets_dir / local.bucket
    folder.mkdir(parents=True, exist_ok=True)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({**GOOD, "id": "good"}) + "\n")
    with LocalStack(local) as stack:
        assert stack.services is not None
        # WHEN a file whose name is not UTF-8 (copied from a Latin-1 system) lands in the bucket
        # folder, sorted before everything else: its key is not text, so every try of it raises
        broken_name = os.fsencode(folder) + b"/0-caf\xe9.jsonl"
        with open(broken_name, "wb") as out:
            out.write(json.dumps(GOOD).encode() + b"\n")
        # AND a good file is uploaded beside it
        uploaded_at = time.monotonic()
        upload(good, local)
        # THEN the good file is ingested within seconds, while the broken one is being retried
        status, _, _ = wait_for_ledger(stack.services, f"object:{local.bucket}/good.jsonl", 10)
        assert status == "ok"
        assert time.monotonic() - uploaded_at < 10
        # AND the broken one is recorded as failed in the ledger once its attempts are used up
        subject = f"object:{local.bucket}/0-caf\\udce9.jsonl"
        status, error, report = wait_for_ledger(stack.services, subject, 30)
        assert status == "failed"
        assert error is not None and error.startswith("gave up after 3 attempt(s): ValidationError")
        assert report["attempts"] == 3
        # AND once in the dead-letter store, with its attempts, and not tried again afterwards
        time.sleep(1.5)
        with stack.services.db.connection() as conn:
            dead = conn.execute("SELECT kind, attempts, last_error, payload FROM dead_jobs").fetchall()
            conn.commit()
        assert len(dead) == 1
        kind, attempts, last_error, payload = dead[0]
        assert (kind, attempts, payload["key"]) == ("ingest", 3, "0-caf\\udce9.jsonl")
        assert last_error == error
        row = ledger_row(stack.services, subject)
        assert row is not None and row[0] == "failed"


def test_object_claimed_by_another_delivery_waits_without_using_attempts_then_is_ingested(
    settings: Settings, model_dir: Path
) -> None:
    # GIVEN the running local stack allowing one attempt per object, polling every 0.5 s
    local = settings.model_copy(
        update={"api_port": 0, "worker_poll_s": 0.5, "bucket_max_attempts": 1, "bucket_backoff_base_s": 0.2}
    )
    with LocalStack(local) as stack:
        assert stack.services is not None
        # WHEN an object lands whose version another delivery has claimed (as a crashed run leaves it)
        info = stack.services.blob.put(local.bucket, "claimed.jsonl", (json.dumps(GOOD) + "\n").encode())
        key = f"object:{local.bucket}/claimed.jsonl#{info.generation}"
        with stack.services.db.connection() as conn:
            conn.execute(
                "INSERT INTO idempotency (key, status, expires_at) VALUES (%s, 'in_progress', now() + interval '1 hour')",
                (key,),
            )
            conn.commit()
        time.sleep(2.5)  # several polls: the watcher has met the claim more than once
        # THEN it is neither ingested nor given up while the claim holds
        subject = f"object:{local.bucket}/claimed.jsonl"
        assert ledger_row(stack.services, subject) is None
        with stack.services.db.connection() as conn:
            counted = conn.execute("SELECT count(*) FROM dead_jobs").fetchone()
            # AND once the claim is gone, it is ingested
            conn.execute("DELETE FROM idempotency WHERE key = %s", (key,))
            conn.commit()
        assert counted is not None and counted[0] == 0
        status, _, report = wait_for_ledger(stack.services, subject, 10)
        assert (status, report["rows_ok"]) == ("ok", 1)
