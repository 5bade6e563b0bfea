"""bench-analyze: replay analyze requests with Zipf-distributed repeats against a slow test LLM.

5,000 requests over 1,000 generated tracks (real embeddings from the exported model), 16 at a time,
through the analyze core (router: cache → rules → distilled → LLM). The local OpenAI-compatible
server answers in 600 ms. For requests 2,000-2,999 it is down (500s, then hanging past the
timeout): every one of those must still be answered, with the rule-based fallback.

Last line: ``bench-analyze requests= llm_fraction= cache_hit= p95_ms= distilled_mae=``, where
``llm_fraction`` counts every HTTP call that reached the LLM server (failed ones too) per request,
and ``distilled_mae`` is the distilled predictor's held-out MAE against the LLM's quality labels.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from functions.analyze.core import analyze_track
from local.datagen import generate_tracks
from shared.intel.context import intel_for
from shared.models import TrackIn
from shared.services import Services
from shared.store.tracks import embedding_text, upsert_tracks
from tests.bench._common import (
    BENCH_DIR,
    BenchDatabase,
    base_parser,
    bench_settings,
    console,
    copy_embeddings,
    embed_in_batches,
    percentile,
    require_model,
    temp_workdir,
    vector_cache_path,
)
from tests.servers.llm_server import LlmServer, label_for

WORKERS = 16


def _load(services: Services, tracks: int, seed: int) -> list[int]:
    rows = list(generate_tracks(tracks, seed))
    items = [
        TrackIn(
            artist=r["artist"],
            title=r["title"],
            lyrics=r["lyrics"],
            source_id=r["id"],
            metadata={k: r[k] for k in ("genre", "year", "theme")},
        )
        for r in rows
    ]
    with services.db.connection() as conn:
        result = upsert_tracks(conn, items)
        conn.commit()
    by_hash = {c.content_hash: c.id for c in result.content_changed}
    ids = [by_hash[item.hash] for item in items]
    embedder = services.embedder
    cache = vector_cache_path(tracks, seed, embedder.model_key)
    if cache.is_file():
        vectors = np.load(cache)
    else:
        vectors = embed_in_batches(embedder, [embedding_text(r["title"], r["lyrics"]) for r in rows], 32)
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    with services.db.connection() as conn:
        copy_embeddings(conn, embedder.model_key, ids, [item.hash for item in items], vectors)
        conn.commit()
    return ids


def _replay(services: Services, ids: list[int], latencies: list[float], failures: list[str]) -> None:
    def one(track_id: int) -> None:
        started = time.perf_counter()
        try:
            analyze_track(track_id, services)
        except Exception as exc:  # counted, never hidden: the acceptance is zero of these
            failures.append(f"{type(exc).__name__}: {exc}")
        latencies.append((time.perf_counter() - started) * 1000)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, ids))


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.set_defaults(rows=1000)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of track popularity")
    parser.add_argument("--latency-ms", type=float, default=600.0)
    args = parser.parse_args()
    require_model()
    rng = np.random.default_rng(args.seed)
    with (
        temp_workdir("bench-analyze-") as work,
        BenchDatabase(work) as bench,
        LlmServer(latency_s=args.latency_ms / 1000) as llm,
    ):
        settings = bench_settings(
            work / "state",
            bench.fresh("analyze"),
            db_pool_max=WORKERS + 4,
            http_allow_networks=["127.0.0.1/32"],
            llm_base_url=llm.url,
            llm_api_key="test-key",
            llm_model="bench-model",
            llm_timeout_s=2.0,
            llm_breaker_reset_s=2.0,
            llm_daily_token_budget=50_000_000,
        )
        services = Services.from_settings(settings)
        try:
            with console.status("loading tracks and embeddings"):
                ids = _load(services, args.rows, args.seed)
            weights = 1.0 / np.arange(1, len(ids) + 1) ** args.zipf
            popular = rng.permutation(ids)  # which track is how popular: random, not by id
            picks = [int(popular[i]) for i in rng.choice(len(ids), args.requests, p=weights / weights.sum())]
            latencies: list[float] = []
            failures: list[str] = []
            down_from, down_to = int(args.requests * 0.4), int(args.requests * 0.6)
            started = time.perf_counter()
            _replay(services, picks[:down_from], latencies, failures)
            calls_before_down = llm.completions()
            llm.mode = "500"
            half = (down_from + down_to) // 2
            _replay(services, picks[down_from:half], latencies, failures)
            llm.mode, llm.hang_s = "hang", 5.0
            _replay(services, picks[half:down_to], latencies, failures)
            calls_while_down = llm.completions() - calls_before_down
            llm.mode = "ok"
            time.sleep(settings.llm_breaker_reset_s)
            _replay(services, picks[down_to:], latencies, failures)
            wall = time.perf_counter() - started
            router = intel_for(services).router
            if router.distilled is None:
                router.refit()
            stats = router.stats.as_dict()
            model = router.distilled
            n = len(picks)
            llm_fraction = llm.completions() / n
            cache_hit = stats["cache_hits"] / n
            p95 = percentile(latencies, 95)
            mae = model.mae_quality if model is not None else float("nan")
            # The distilled answers against what the LLM would have said for those very tracks.
            with services.db.connection() as conn:
                rows = conn.execute(
                    "SELECT a.result, t.lyrics FROM analyses a JOIN tracks t ON t.id = a.track_id"
                    " WHERE a.analyzer LIKE 'distilled:%%'"
                ).fetchall()
                conn.commit()
            live_mae = (
                float(np.mean([abs(r[0]["profile"]["quality"] - label_for(r[1])["quality"]) for r in rows]))
                if rows
                else float("nan")
            )
            print(f"tracks={len(ids)} distinct_requested={len(set(picks))} workers={WORKERS} wall_s={wall:.1f}")
            print(
                f"answered_by: cache={stats['cache_hits']} rules={stats['rules']} distilled={stats['distilled']}"
                f" llm={stats['llm_calls']} fallback={stats['fallbacks']} {stats['fallback_reasons']}"
            )
            print(f"llm_http_calls={llm.completions()} while_down={calls_while_down} failed_requests={len(failures)}")
            if model is not None:
                print(
                    f"distilled: labels={model.labels} heldout_mae={model.mae_quality:.3f}"
                    f" heldout_sentiment_acc={model.acc_sentiment:.3f} answered_mae_vs_llm={live_mae:.3f}"
                )
            print(f"p50_ms={percentile(latencies, 50):.1f} p99_ms={percentile(latencies, 99):.1f}")
            for failure in failures[:5]:
                print("failure:", failure)
            print(
                f"bench-analyze requests={n} llm_fraction={llm_fraction:.3f} cache_hit={cache_hit:.3f}"
                f" p95_ms={p95:.1f} distilled_mae={mae:.3f}"
            )
        finally:
            services.close()


if __name__ == "__main__":
    main()
