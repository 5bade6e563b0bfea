"""``shared.store.stats`` on a real Postgres: every count ``/stats`` reports, read in one transaction."""

from __future__ import annotations

from shared.services import Services
from shared.store import ledger
from shared.store.stats import LlmBudgetDay, LlmDay, read_stats
from shared.vision.capacity import report_worker
from shared.vision.store import upsert_image
from shared.vision.stream_registry import register_stream


def test_an_empty_store_counts_nothing(services: Services) -> None:
    with services.db.connection() as conn:
        stats = read_stats(conn)
        conn.commit()
    assert stats.tracks == 0 and stats.embeddings == {} and stats.stages == {}
    assert stats.jobs == {} and stats.dead_jobs == {} and stats.images == {} and stats.streams == {}
    assert stats.gpu_workers == 0
    assert stats.llm_today == LlmDay(calls=0, ok=0, tokens=0, cost_usd=0.0, budget=None)


def test_counts_are_grouped_and_stale_gpu_workers_and_old_llm_calls_are_left_out(services: Services) -> None:
    # GIVEN jobs, a dead job, images, a stream, two GPU workers (one silent for minutes) and LLM calls
    services.queue.enqueue("enrich", {"track_id": 1}, dedup_key="enrich:1")
    services.queue.enqueue("enrich", {"track_id": 2}, dedup_key="enrich:2")
    services.queue.enqueue("embed", {"track_id": 1}, dedup_key="embed:1")
    services.queue.dead_letter("analyze", {"track_id": 3}, "poison", dedup_key="analyze:3")
    with services.db.connection() as conn:
        upsert_image(conn, content_hash="a", bucket="b", key="images/a.jpg", size=10, fmt="jpeg")
        upsert_image(conn, content_hash="r", bucket="b", key="images/r.txt", size=10, fmt=None, rejected="format")
        register_stream(conn, "rtsp://camera.example/live", 1.0, model=None, keyframes_only=False)
        ledger.record(conn, "object:b/a", "ingested", "ok")
        for worker in ("host-a:1:x", "host-b:2:y"):
            report_worker(
                conn, worker, host=worker[:6], provider="cpu", model="m", max_batch=8, img_per_s=None, busy_s=0
            )
        conn.execute("UPDATE gpu_workers SET updated_at = now() - interval '5 minutes' WHERE id = 'host-b:2:y'")
        conn.execute(
            "INSERT INTO llm_calls (subject, analyzer, prompt_version, content_hash, outcome, tokens_in, tokens_out,"
            " cost_usd, created_at) VALUES"
            " ('track:1', 'llm:m', 'v1', 'h1', 'ok', 100, 20, 0.0012, now()),"
            " ('track:2', 'llm:m', 'v1', 'h2', 'invalid', 50, 5, 0.0005, now()),"
            " ('track:3', 'llm:m', 'v1', 'h3', 'ok', 999, 999, 1, now() - interval '2 days')"
        )
        conn.execute(
            "INSERT INTO llm_budget (day, token_limit, used, reserved, refused) VALUES (current_date, 1000, 175, 5, 2)"
        )
        conn.commit()
    # WHEN the store is counted
    with services.db.connection() as conn:
        stats = read_stats(conn)
        conn.commit()
    # THEN each count is grouped by its kind or status, and only today's calls and live workers count
    assert stats.jobs == {"enrich": 2, "embed": 1} and stats.dead_jobs == {"analyze": 1}
    assert stats.images == {"pending": 1, "rejected": 1} and sum(stats.streams.values()) == 1
    assert stats.stages == {"ingested": {"ok": 1}}
    assert stats.gpu_workers == 1
    assert stats.llm_today == LlmDay(
        calls=2,
        ok=1,
        tokens=175,
        cost_usd=0.0017,
        budget=LlmBudgetDay(token_limit=1000, used=175, reserved=5, refused=2),
    )
