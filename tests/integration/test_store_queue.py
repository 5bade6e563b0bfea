"""Postgres queue on a real PostgreSQL: claim, visibility, retries, dead letters, two racing workers."""

from __future__ import annotations

import threading
import time

from shared.queue.base import NewJob
from shared.services import Services


def test_migrations_applied_once_when_run_twice(services: Services) -> None:
    # GIVEN a migrated database WHEN migrations run again THEN nothing is applied twice
    assert services.db.migrate() == []
    with services.db.connection() as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()]
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert ext is not None


def test_enqueue_with_same_dedup_key_keeps_one_job(services: Services) -> None:
    q = services.queue
    added = q.enqueue_many([NewJob("embed", {"track_id": 1}, "k1"), NewJob("embed", {"track_id": 1}, "k1")])
    added += q.enqueue_many([NewJob("embed", {"track_id": 1}, "k1")])
    assert added == 1
    assert q.depth("embed") == 1


def test_claimed_job_is_invisible_until_visibility_expires(services: Services) -> None:
    q = services.queue
    q.enqueue("embed", {"track_id": 1})
    first = q.claim("embed", 10, visibility_s=0.3)
    assert len(first) == 1
    assert q.claim("embed", 10) == []  # held under lease
    time.sleep(0.4)
    again = q.claim("embed", 10)
    assert [c.id for c in again] == [first[0].id]
    assert again[0].job.attempts == 2
    # the first worker's lease is stale: its ack must not delete the job now held by another
    assert q.ack(first) == 0
    assert q.ack(again) == 1
    assert q.depth() == 0


def test_transient_failures_retry_with_backoff_then_dead_letter_with_last_error(services: Services) -> None:
    q = services.queue
    q.max_attempts = 3
    q.enqueue("embed", {"track_id": 7})
    outcomes = []
    for attempt in range(3):
        claimed = []
        deadline = time.monotonic() + 5
        while not claimed and time.monotonic() < deadline:
            claimed = q.claim("embed", 1)
            time.sleep(0.02)
        assert claimed, f"job not visible again for attempt {attempt + 1}"
        outcomes.append(q.fail(claimed[0], f"boom {attempt + 1}", retryable=True))
    assert outcomes == ["retry", "retry", "dead"]
    assert q.depth() == 0
    dead = q.dead_jobs()
    assert len(dead) == 1 and dead[0]["last_error"] == "boom 3" and dead[0]["attempts"] == 3


def test_poison_failure_dead_letters_at_once(services: Services) -> None:
    q = services.queue
    q.enqueue("embed", {"nope": True})
    (claimed,) = q.claim("embed", 1)
    assert q.fail(claimed, "payload lacks track_id", retryable=False) == "dead"
    assert q.dead_count("embed") == 1 and q.depth() == 0


def test_lease_expired_after_last_attempt_moves_job_to_dead_letters(services: Services) -> None:
    q = services.queue
    q.max_attempts = 1
    q.enqueue("embed", {"track_id": 1})
    assert len(q.claim("embed", 1, visibility_s=0.1)) == 1  # the worker "dies" holding it
    time.sleep(0.2)
    assert q.claim("embed", 1) == []
    assert q.dead_count("embed") == 1
    assert "attempts exhausted" in q.dead_jobs()[0]["last_error"]


def test_two_racing_workers_claim_each_job_exactly_once(services: Services) -> None:
    q = services.queue
    n = 400
    q.enqueue_many([NewJob("embed", {"track_id": i}, f"k{i}") for i in range(n)])
    seen: list[list[int]] = [[], []]

    def worker(slot: int) -> None:
        while True:
            claimed = q.claim("embed", 7)
            if not claimed:
                return
            seen[slot].extend(c.job.payload["track_id"] for c in claimed)
            q.ack(claimed)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = seen[0] + seen[1]
    assert sorted(everything) == list(range(n))
    assert seen[0] and seen[1], "both workers should have taken part"
    assert q.depth() == 0


def test_release_returns_jobs_without_counting_the_attempt(services: Services) -> None:
    q = services.queue
    q.enqueue("embed", {"track_id": 1})
    claimed = q.claim("embed", 1)
    assert q.release(claimed) == 1
    (again,) = q.claim("embed", 1)
    assert again.job.attempts == 1


def test_track_jobs_built_in_sql_equal_the_python_constructors(services: Services) -> None:
    from shared.queue.kinds import TRACK_JOB_KINDS, track_jobs

    # GIVEN jobs for two tracks built in the database
    with services.db.connection() as conn:
        added = services.queue.enqueue_track_jobs(TRACK_JOB_KINDS, [7, 8], ["h7", "h8"], conn=conn)
        conn.commit()
    assert added == 4
    # WHEN the same jobs are enqueued from the Python constructors THEN every one is a duplicate
    python_jobs = [job for tid, h in ((7, "h7"), (8, "h8")) for job in track_jobs(tid, h)]
    assert services.queue.enqueue_many(python_jobs) == 0
    with services.db.connection() as conn:
        rows = conn.execute("SELECT kind, payload, dedup_key FROM jobs ORDER BY kind, dedup_key").fetchall()
        conn.commit()
    expected = sorted(((j.kind, j.payload, j.dedup_key) for j in python_jobs), key=lambda r: (r[0], r[2]))
    assert [tuple(r) for r in rows] == expected


def test_track_jobs_built_in_sql_parse_with_their_payload_model_into_the_python_built_jobs(
    services: Services,
) -> None:
    from shared.queue.kinds import PAYLOADS, TrackPayload, parse_payload

    track_kinds = [kind for kind, model in PAYLOADS.items() if issubclass(model, TrackPayload)]
    chash = "ab" * 32  # a real sha256 hex digest's length
    # GIVEN one job of every track kind built by the SQL builder, claimed back as a consumer sees it
    with services.db.connection() as conn:
        assert services.queue.enqueue_track_jobs(track_kinds, [2**40], [chash], conn=conn) == len(track_kinds)
        conn.commit()
    for kind in track_kinds:
        (claimed,) = services.queue.claim(kind, 5)
        # WHEN its payload is read with the kind's model
        payload = parse_payload(claimed.job.kind, claimed.job.payload)
        # THEN it is the model the Python producer builds, and rebuilding the job gives the SQL row back
        assert payload == PAYLOADS[kind](track_id=2**40, content_hash=chash)
        assert payload.to_job() == NewJob(kind, claimed.job.payload, claimed.job.dedup_key)
        assert type(payload).from_job(claimed.job) == payload


def test_has_ready_sees_only_claimable_jobs_of_the_kind(services: Services) -> None:
    q = services.queue
    assert not q.has_ready("embed")
    q.enqueue("enrich", {"track_id": 1})
    assert not q.has_ready("embed") and q.has_ready("enrich")
    q.enqueue("embed", {"track_id": 1})
    assert q.has_ready("embed")
    q.claim("embed", 10)
    assert not q.has_ready("embed")  # held under a lease: nothing left to claim


def test_local_enrich_worker_waits_while_embeddings_are_ready(services: Services) -> None:
    from local.intel_workers import EnrichWorker

    q = services.queue
    q.enqueue("enrich", {"track_id": 1})
    q.enqueue("embed", {"track_id": 1})
    # WHEN the enrich worker ticks with an embed job waiting THEN it claims nothing
    assert EnrichWorker(services).tick() is False
    with services.db.connection() as conn:
        (attempts,) = conn.execute("SELECT attempts FROM jobs WHERE kind = 'enrich'").fetchone()
        conn.commit()
    assert attempts == 0
