"""Tracing overhead: bench-search's ``GET /search`` and bench-ingest's ingest function and pipeline,
each with span export off and on (OTLP over HTTP at ``--sample`` sampling), interleaved.

Run with ``make bench-tracing`` (``python -m tests.bench.bench_tracing [--rows N]``), never under pytest.

The collector is a real OTLP/HTTP receiver in a process of its own (``tests.servers.otlp_receiver``),
as a deployed collector would be, so decoding spans does not take the measured process's time.
Each measurement runs in blocks that alternate off/on in an ABBA order (off, on, on, off, ...), so
a slow stretch of the machine weighs on both conditions alike; the figures compare the pooled
samples of each condition from the same run:

* search: ``GET /search`` (semantic, every query distinct and uncached) over the catalogue of
  bench-search (its cached vectors, its HNSW index), through the real HTTP server: each request a
  server span, sampled at ``--sample``.
* ingest: the ingest function over a fresh database per block (upload→commit of ``--ingest-rows``
  tracks: the object's span, the jobs carrying its context).
* pipeline: upload→every track embedded through the local runtime's watcher and embed worker
  (``--pipeline-rows`` tracks per block; embed batch spans, job contexts through the outbox).

Target: each overhead (on / off - 1) <= 5% at 10% sampling.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from local.datagen import write_tracks
from shared.observability.traces import configure_tracing
from tests.bench._common import (
    BenchDatabase,
    base_parser,
    catalogue,
    console,
    percentile,
    require_model,
    temp_workdir,
)
from tests.bench.bench_ingest import bench_pipeline, bench_upsert
from tests.bench.bench_search import forget_query_vectors, make_queries, measure_e2e

TARGET_OVERHEAD = 0.05
_ENDPOINT_ENV = "CONTENTFN_OTEL_EXPORTER_ENDPOINT"
_RATIO_ENV = "CONTENTFN_OTEL_SAMPLE_RATIO"


@contextmanager
def collector() -> Iterator[str]:
    """An OTLP receiver process; yields its endpoint."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.otlp_receiver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        if not endpoint.startswith("http://"):
            raise SystemExit(f"the OTLP receiver did not start: {endpoint!r}")
        yield endpoint
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)


def spans_received(endpoint: str) -> int:
    return int(httpx.get(endpoint + "/count", timeout=10).text)


def abba(blocks: int) -> list[bool]:
    """Tracing on/off per block: off, on, on, off, off, on, ... (``blocks`` even)."""
    return [(i % 4) in (1, 2) for i in range(blocks)]


@contextmanager
def tracing_env(on: bool, endpoint: str, sample: float) -> Iterator[None]:
    """The process environment a deployed function would have, read by ``bench_settings``."""
    saved = {k: os.environ.get(k) for k in (_ENDPOINT_ENV, _RATIO_ENV)}
    if on:
        os.environ[_ENDPOINT_ENV], os.environ[_RATIO_ENV] = endpoint, str(sample)
    else:
        os.environ.pop(_ENDPOINT_ENV, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        configure_tracing("contentfn-bench", None)


def overhead(on: float, off: float) -> float:
    return on / off - 1.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "tracing overhead benchmark")
    parser.add_argument("--sample", type=float, default=0.1, help="sampling ratio with tracing on (default 0.1)")
    parser.add_argument("--blocks", type=int, default=8, help="alternating blocks per measurement (even; default 8)")
    parser.add_argument("--queries", type=int, default=35, help="distinct search queries per block (default 35)")
    parser.add_argument("--ingest-rows", type=int, default=5000, help="tracks per ingest block (default 5000)")
    parser.add_argument("--pipeline-rows", type=int, default=400, help="tracks per pipeline block (default 400)")
    args = parser.parse_args(argv)
    if args.blocks < 2 or args.blocks % 2:
        raise SystemExit("--blocks must be even and at least 2")
    require_model()
    order = abba(args.blocks)
    queries = make_queries(args.queries * args.blocks + 20, args.seed)
    warmups, measured = queries[:20], queries[20:]

    with collector() as endpoint, temp_workdir("contentfn-bench-tracing-") as work, BenchDatabase(work) as pg:
        # -- search ----------------------------------------------------------------------------
        api_key = secrets.token_urlsafe(24)
        search: dict[bool, list[float]] = {False: [], True: []}
        with catalogue(pg, work / "search", "search", args.rows, args.seed, api_key=api_key) as (services, setup):
            measure_e2e(services, api_key, [], warmups)  # one untimed pass: caches, plans, thread pool
            for i, on in enumerate(order):
                block = measured[i * args.queries : (i + 1) * args.queries]
                forget_query_vectors(services, block)
                configure_tracing("contentfn-bench", endpoint if on else None, sample_ratio=args.sample)
                search[on] += [m["e2e"] for m in measure_e2e(services, api_key, [], block)]
                configure_tracing("contentfn-bench", None)
        search_spans = spans_received(endpoint)

        # -- ingest function and pipeline ------------------------------------------------------
        ingest: dict[bool, list[float]] = {False: [], True: []}
        pipeline: dict[bool, list[float]] = {False: [], True: []}
        for i, on in enumerate(order):
            data = work / f"ingest-{i}.jsonl"
            write_tracks(data, args.ingest_rows, seed=args.seed + i, fmt="jsonl")
            with tracing_env(on, endpoint, args.sample):
                result = bench_upsert(work / f"ingest-{i}", pg.fresh(f"ingest{i}"), data, args.ingest_rows)
            ingest[on].append(result.rows_per_s)
            console.print(
                f"ingest block {i + 1}/{len(order)} tracing {'on ' if on else 'off'}: {result.rows_per_s:,.0f} rows/s"
            )
        for i, on in enumerate(order):
            data = work / f"pipeline-{i}.jsonl"
            write_tracks(data, args.pipeline_rows, seed=args.seed + 100 + i, fmt="jsonl")
            with tracing_env(on, endpoint, args.sample):
                run = bench_pipeline(
                    work / f"pipeline-{i}",
                    pg.fresh(f"pipeline{i}"),
                    data,
                    args.pipeline_rows,
                    args.seed + 100 + i,
                    3600,
                )
            pipeline[on].append(run.tps)
            console.print(
                f"pipeline block {i + 1}/{len(order)} tracing {'on ' if on else 'off'}: {run.tps:.1f} tracks/s"
            )
        all_spans = spans_received(endpoint)

    return report(args, setup.tracks, search, ingest, pipeline, search_spans, all_spans)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def report(
    args: Any,
    tracks: int,
    search: dict[bool, list[float]],
    ingest: dict[bool, list[float]],
    pipeline: dict[bool, list[float]],
    search_spans: int,
    all_spans: int,
) -> int:
    s_off, s_on = percentile(search[False], 95), percentile(search[True], 95)
    m_off, m_on = _mean(search[False]), _mean(search[True])
    # Throughputs: overhead is the time per unit, the inverse ratio.
    i_off, i_on = _mean(ingest[False]), _mean(ingest[True])
    p_off, p_on = _mean(pipeline[False]), _mean(pipeline[True])
    search_oh, ingest_oh, pipeline_oh = overhead(m_on, m_off), overhead(i_off, i_on), overhead(p_off, p_on)
    ok = max(search_oh, ingest_oh, pipeline_oh) <= TARGET_OVERHEAD
    print(
        "\n".join(
            [
                f"tracing overhead: exporter on at {args.sample:g} sampling vs off, {args.blocks} ABBA blocks each; "
                f"{tracks:,}-track catalogue",
                f"  search    mean {m_off:6.2f} -> {m_on:6.2f} ms ({search_oh:+.1%}); p95 {s_off:6.2f} -> {s_on:6.2f} ms "
                f"({overhead(s_on, s_off):+.1%}); {len(search[True])} requests per condition",
                f"  ingest    {i_off:8,.0f} -> {i_on:8,.0f} rows/s ({ingest_oh:+.1%} time per row), "
                f"{args.ingest_rows:,} rows per block",
                f"  pipeline  {p_off:8.1f} -> {p_on:8.1f} tracks/s ({pipeline_oh:+.1%} time per track), "
                f"{args.pipeline_rows:,} tracks per block",
                f"  spans received by the collector: {search_spans:,} from search, {all_spans:,} in all; "
                f"target each overhead <= {TARGET_OVERHEAD:.0%}: {'met' if ok else 'MISSED'}",
            ]
        )
    )
    print(
        f"bench-tracing sample={args.sample:g} search_mean_overhead={search_oh:.4f} "
        f"search_p95_off_ms={s_off:.2f} search_p95_on_ms={s_on:.2f} ingest_overhead={ingest_oh:.4f} "
        f"pipeline_overhead={pipeline_oh:.4f} spans={all_spans}"
    )
    if all_spans == 0:
        print("no span reached the collector: tracing was not on", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
