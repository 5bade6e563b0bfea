"""Model lifecycle benchmark: the int8 variant added as a shadow beside fp32 on a live catalogue.

Run with ``make bench-models`` (``python -m tests.bench.bench_models [--rows N]``), never under pytest.

Steps, over the synthetic catalogue with real fp32 vectors (cached on disk like ``bench_search``):
fp32 is registered active and the int8 variant added as a shadow; an embed worker *process* (the
local runtime's loop: uploads first, backfill within its share) backfills int8 while a thread keeps
uploading new tracks and another keeps calling ``GET /search`` over HTTP. The worker is killed with
SIGKILL ``--kills`` times mid-backfill and restarted. Once the backfill is done and the uploads are
embedded, int8 is activated while searches run, then rolled back. Checked: every track has exactly
one vector per model; no search failed. Measured: backfill tracks per second, search p95 during the
backfill, failed requests around the switch, and recall@10 of int8 against fp32 (exact top-10 each).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
import psycopg
from psycopg import sql

from functions.api.core import Api
from local.datagen import generate_tracks
from local.server import ApiServer
from shared.embedder.providers import add_with_default, builtin_spec, embedder_for
from shared.models import TrackIn
from shared.queue.kinds import EMBED_JOB
from shared.services import Services
from shared.store.registry import activate_model, coverage, get_model, rollback_model
from shared.store.tracks import TrackStore, embedding_text, upsert_tracks
from tests.bench._common import (
    REPO,
    BenchDatabase,
    base_parser,
    bench_settings,
    console,
    copy_embeddings,
    percentile,
    require_model,
    temp_workdir,
)
from tests.bench.bench_search import load_or_embed, make_queries

K = 10
LEASE_S = 15
# New tracks per half second during the backfill: a steady trickle, well under what one worker
# embeds with both models on two cores (5 per tick outran it there and the backfill never caught up).
UPLOADS_PER_TICK = 1
# Searches keep arriving at a steady rate (an open loop, as users send them), not back to back: a
# closed loop of searches would take a core from the backfill it is meant to watch.
SEARCHES_PER_S = 10.0

_WORKER = """
import json, sys, time
from local.workers import EmbedWorker
from shared.config import load_settings
from shared.services import Services
args = json.loads(sys.argv[1])
worker = EmbedWorker(Services.from_settings(load_settings(**args), migrate=False))
while True:
    if not worker.tick():
        time.sleep(0.2)
"""


class Searcher(threading.Thread):
    """Calls ``GET /search`` ``SEARCHES_PER_S`` times a second; records latency and failures with the phase they fell in."""

    def __init__(self, base: str, api_key: str, queries: Sequence[str]) -> None:
        super().__init__(daemon=True)
        self.base, self.api_key, self.queries = base, api_key, list(queries)
        self.phase = "backfill"
        self.latencies: dict[str, list[float]] = {}
        self.failures: dict[str, int] = {}
        self.models: set[str] = set()
        self.last_model: str | None = None
        self.stop = threading.Event()

    def answered_by(self, key: str, timeout_s: float) -> float:
        """Seconds until a search is answered by model ``key`` (the API caches the active model for
        ``search_model_cache_s``; a switch made elsewhere reaches it within that); fails after ``timeout_s``."""
        started = time.perf_counter()
        while self.last_model != key:
            if time.perf_counter() - started > timeout_s:
                raise SystemExit(f"no search was answered by {key} within {timeout_s:.0f} s of the switch")
            time.sleep(0.02)
        return time.perf_counter() - started

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers={"x-api-key": self.api_key}, timeout=30.0) as client:
            i, next_at = 0, 0.0
            while not self.stop.wait(max(0.0, next_at - time.perf_counter())):
                next_at = time.perf_counter() + 1.0 / SEARCHES_PER_S
                q, phase = self.queries[i % len(self.queries)] + f" {i}", self.phase
                i += 1
                started = time.perf_counter()
                try:
                    resp = client.get("/search", params={"q": q, "k": K})
                    ok = resp.status_code == 200
                    if ok:
                        self.last_model = resp.json()["model"]
                        self.models.add(self.last_model)
                except httpx.HTTPError:
                    ok = False
                self.latencies.setdefault(phase, []).append((time.perf_counter() - started) * 1000)
                if not ok:
                    self.failures[phase] = self.failures.get(phase, 0) + 1


class Uploader(threading.Thread):
    """Upserts ``UPLOADS_PER_TICK`` new tracks every half second and queues their embed jobs, like ingest does."""

    def __init__(self, services: Services, seed: int) -> None:
        super().__init__(daemon=True)
        self.services, self.seed = services, seed
        self.uploaded = 0
        self.stop = threading.Event()

    def run(self) -> None:
        batch = 0
        while not self.stop.wait(0.5):
            rows = [
                TrackIn(
                    artist=t["artist"],
                    title=t["title"],
                    lyrics=t["lyrics"],
                    source="live",
                    source_id=f"{batch}-{t['id']}",
                )
                for t in generate_tracks(UPLOADS_PER_TICK, self.seed + 1000 + batch)
            ]
            batch += 1
            with self.services.db.connection() as conn:
                result = upsert_tracks(conn, rows)
                changed = result.content_changed
                self.services.queue.enqueue_track_jobs(
                    [EMBED_JOB], [c.id for c in changed], [c.content_hash for c in changed], conn=conn
                )
                conn.commit()
            self.uploaded += len(changed)


def _load(services: Services, url: str, rows: int, seed: int) -> int:
    raw = list(generate_tracks(rows, seed))
    texts = [embedding_text(t["title"], t["lyrics"]) for t in raw]
    vectors, _, _ = load_or_embed(texts, rows, seed, services.embedder)
    with services.db.connection() as conn:
        upsert_tracks(
            conn, (TrackIn(artist=t["artist"], title=t["title"], lyrics=t["lyrics"], source_id=t["id"]) for t in raw)
        )
        ids = dict(conn.execute("SELECT source_id, id FROM tracks").fetchall())
        hashes = dict(conn.execute("SELECT id, content_hash FROM tracks").fetchall())
        track_ids = [int(ids[t["id"]]) for t in raw]
        copy_embeddings(conn, services.embedder.model_key, track_ids, [hashes[i] for i in track_ids], vectors)
        conn.commit()
    # Its own connection: a pooled one carries the API's statement timeout, and the build is longer.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        TrackStore(conn).ensure_hnsw_index(
            services.embedder.model_key,
            m=services.settings.hnsw_m,
            ef_construction=services.settings.hnsw_ef_construction,
        )
    return len(raw)


def _worker(settings_args: dict[str, Any]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(settings_args)], cwd=REPO, env=env)


def _cursor(services: Services, key: str) -> tuple[int, bool]:
    with services.db.connection() as conn:
        model = get_model(conn, key)
        conn.commit()
    return model.backfill_after, model.backfill_done


def _exact_top(services: Services, key: str, vector: np.ndarray) -> list[int]:
    dims = len(vector)
    with services.db.connection() as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT track_id FROM embeddings WHERE model = {} ORDER BY (embedding::vector({}) <=> %s::vector({})) + 0"
                " LIMIT %s"
            ).format(sql.Literal(key), sql.Literal(dims), sql.Literal(dims)),
            (vector, K),
        ).fetchall()
        conn.commit()
    return [int(r[0]) for r in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "model lifecycle benchmark")
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs of the embed worker mid-backfill (default 2)")
    parser.add_argument("--recall-queries", type=int, default=100, help="queries for int8 recall@10 (default 100)")
    args = parser.parse_args(argv)
    require_model()
    queries = make_queries(200, args.seed)
    with temp_workdir("contentfn-bench-models-") as work, BenchDatabase(work) as pg:
        url = pg.fresh("models")
        api_key = secrets.token_urlsafe(24)
        settings = bench_settings(work / "state", url, api_key=api_key)
        services = Services.from_settings(settings)
        server = ApiServer(Api(services), "127.0.0.1", 0)
        try:
            tracks = _load(services, url, args.rows, args.seed)
            fp32_key = services.embedder.model_key
            with services.db.connection() as conn:
                int8_key = add_with_default(conn, settings, builtin_spec(settings, "int8")).key
                conn.commit()
            server.start()
            searcher = Searcher(f"http://127.0.0.1:{server.port}", api_key, queries)
            uploader = Uploader(services, args.seed)
            # Jobs a killed worker had claimed come back when their lease ends: a short lease keeps
            # the wait for the last uploads' vectors short.
            worker_args = {
                "data_dir": str(work / "worker"),
                "database_url": url,
                "model_dir": str(settings.resolved_model_dir),
                "queue_visibility_s": LEASE_S,
            }
            started = time.perf_counter()
            searcher.start()
            uploader.start()
            worker = _worker(worker_args)
            kills = 0
            last = -1
            while True:
                cursor, done = _cursor(services, int8_key)
                if done:
                    break
                if cursor != last:
                    console.print(f"backfill cursor {cursor}")
                    last = cursor
                if kills < args.kills and cursor > (kills + 1) * tracks // (args.kills + 2):
                    worker.send_signal(signal.SIGKILL)
                    worker.wait()
                    kills += 1
                    console.print(f"killed the embed worker at cursor {cursor}; restarting it")
                    worker = _worker(worker_args)
                time.sleep(0.2)
            backfill_s = time.perf_counter() - started
            uploader.stop.set()
            uploader.join()
            with services.db.connection() as conn:
                deadline = time.monotonic() + 600
                while not (cov := coverage(conn, int8_key)).complete and time.monotonic() < deadline:
                    console.print(f"waiting for int8: {cov.embedded}/{cov.tracks} index {cov.index}")
                    conn.commit()
                    time.sleep(2.0)
                cov_int8, cov_fp32 = coverage(conn, int8_key), coverage(conn, fp32_key)
                per_model = dict(
                    conn.execute("SELECT model, count(*) - count(DISTINCT track_id) FROM embeddings GROUP BY model")
                )
                conn.commit()
            searcher.phase = "switch"
            time.sleep(1.0)
            with services.db.connection() as conn:
                activate_model(conn, int8_key)
                conn.commit()
            switch_s = searcher.answered_by(int8_key, 30.0)
            time.sleep(1.0)
            with services.db.connection() as conn:
                rollback_model(conn)
                conn.commit()
            rollback_s = searcher.answered_by(fp32_key, 30.0)
            time.sleep(1.0)
            searcher.stop.set()
            searcher.join()
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            with services.db.connection() as conn:
                int8 = embedder_for(get_model(conn, int8_key), settings)
                conn.commit()
            qv_fp32 = services.embedder.embed(queries[: args.recall_queries])
            qv_int8 = int8.embed(queries[: args.recall_queries])
            recall = float(
                np.mean(
                    [
                        len(set(_exact_top(services, fp32_key, a)) & set(_exact_top(services, int8_key, b))) / K
                        for a, b in zip(qv_fp32, qv_int8, strict=True)
                    ]
                )
            )
        finally:
            server.stop()
            services.close()

    backfill_tps = tracks / backfill_s
    during = searcher.latencies.get("backfill", [])
    failed_backfill = searcher.failures.get("backfill", 0)
    switch_failed = searcher.failures.get("switch", 0)
    print(
        f"model lifecycle benchmark: {tracks:,} tracks (+{uploader.uploaded} uploaded during the backfill), "
        f"{kills} worker kills\n"
        f"  backfill of {int8_key}: {backfill_s:.1f} s ({backfill_tps:.1f} tracks/s)\n"
        f"  coverage: int8 {cov_int8.embedded}/{cov_int8.tracks} index {cov_int8.index}, "
        f"fp32 {cov_fp32.embedded}/{cov_fp32.tracks}; duplicate vectors per model: {per_model}\n"
        f"  searches during backfill: {len(during)} (failed {failed_backfill}), p50 {percentile(during, 50):.1f} ms, "
        f"p95 {percentile(during, 95):.1f} ms; around the switch: {len(searcher.latencies.get('switch', []))}"
        f" (failed {switch_failed}); models answered: {sorted(searcher.models)}; search answered by int8 "
        f"{switch_s:.2f} s after activate, by fp32 again {rollback_s:.2f} s after rollback\n"
        f"  int8 recall@{K} vs fp32 (exact top-{K} each, {args.recall_queries} queries): {recall:.4f}"
    )
    print(
        f"bench-models tracks={tracks} backfill_tps={backfill_tps:.1f} search_p95_during_ms={percentile(during, 95):.1f} "
        f"switch_failed_requests={switch_failed} int8_recall_at_10_vs_fp32={recall:.4f}"
    )
    ok = failed_backfill == 0 and switch_failed == 0 and cov_int8.complete and not any(per_model.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
