"""The embed function on a real PostgreSQL + pgvector and the real model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from functions.embed.core import ensure_index, run_embed_batch
from functions.ingest.core import handle_object_created
from shared.embedder.base import Embedder
from shared.events import ObjectCreated
from shared.services import Services


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> Embedder:
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(model_dir)


def _ingest(services: Services, key: str, n: int, offset: int = 0) -> None:
    body = "".join(
        json.dumps({"id": i, "artist": f"A{i % 5}", "title": f"T{i}", "lyrics": f"verse number {i} about rivers"})
        + "\n"
        for i in range(offset, offset + n)
    )
    info = services.blob.put(services.settings.bucket, key, body.encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)


def _counts(services: Services) -> tuple[int, int, int, int]:
    with services.db.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM embeddings),"
            " (SELECT count(*) FROM jobs WHERE kind = 'embed'), (SELECT count(*) FROM ledger WHERE stage = 'embedded' AND status = 'ok')"
        ).fetchone()
        conn.commit()
    return tuple(int(x) for x in row)  # type: ignore[return-value]


def test_two_embed_workers_racing_on_one_queue_write_each_vector_once(services: Services, embedder: Embedder) -> None:
    # GIVEN 120 ingested tracks with one embed job each
    services._embedder = embedder
    _ingest(services, "race.jsonl", 120)
    ensure_index(services)
    claimed_by: list[list[int]] = [[], []]

    def worker(slot: int) -> None:
        while True:
            outcome = run_embed_batch(services, limit=8)
            if not outcome.claimed:
                return
            claimed_by[slot].append(outcome.embedded)

    # WHEN two workers race over the queue
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # THEN every track has exactly one vector, every job is gone, the ledger saw each track once
    assert _counts(services) == (120, 120, 0, 120)
    assert sum(map(sum, claimed_by)) == 120
    assert all(claimed_by), "both workers should have embedded something"


def test_redelivered_embed_job_for_unchanged_content_does_no_work(services: Services, embedder: Embedder) -> None:
    services._embedder = embedder
    _ingest(services, "a.jsonl", 10)
    while run_embed_batch(services).claimed:
        pass
    with services.db.connection() as conn:
        before = conn.execute("SELECT track_id, created_at FROM embeddings ORDER BY track_id").fetchall()
        (track_id, chash) = conn.execute("SELECT id, content_hash FROM tracks ORDER BY id LIMIT 1").fetchone()
        conn.commit()
    # an at-least-once redelivery of an old job (same track, same content)
    services.queue.enqueue("embed", {"track_id": track_id, "content_hash": chash})
    outcome = run_embed_batch(services)
    assert outcome.claimed == 1 and outcome.embedded == 0 and outcome.skipped == 1
    with services.db.connection() as conn:
        after = conn.execute("SELECT track_id, created_at FROM embeddings ORDER BY track_id").fetchall()
        conn.commit()
    assert after == before


def test_changed_lyrics_are_re_embedded_beside_nothing_stale(services: Services, embedder: Embedder) -> None:
    services._embedder = embedder
    _ingest(services, "v1.jsonl", 3)
    while run_embed_batch(services).claimed:
        pass
    body = json.dumps({"id": 1, "artist": "A1", "title": "T1", "lyrics": "an entirely different song about deserts"})
    info = services.blob.put(services.settings.bucket, "v2.jsonl", (body + "\n").encode())
    handle_object_created(ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services)
    outcome = run_embed_batch(services)
    assert outcome.embedded == 1
    with services.db.connection() as conn:
        rows = conn.execute(
            "SELECT count(*) FROM embeddings e JOIN tracks t ON t.id = e.track_id WHERE e.content_hash = t.content_hash"
        ).fetchone()
        conn.commit()
    assert rows[0] == 3


def test_poison_embed_job_is_dead_lettered_at_once(services: Services, embedder: Embedder) -> None:
    services._embedder = embedder
    services.queue.enqueue("embed", {"track": "not-an-id"})
    outcome = run_embed_batch(services)
    assert outcome.failed == 1
    assert services.queue.dead_count("embed") == 1 and services.queue.depth() == 0
