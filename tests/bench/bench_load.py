"""Load benchmark: mixed API traffic at rising concurrency against the local stack, and search alone.

Run with ``make bench-load`` (``python -m tests.bench.bench_load [--rows N]``), never under pytest.

Setup is ``bench_search``'s (:func:`tests.bench.bench_search.prepare`): the synthetic catalogue with
real model vectors (the same on-disk cache), the HNSW index, the full-text vectors and every track
profiled by the rule-based analyzer with its analysis stored. The API then runs as the local stack
runs it (uvicorn on a free port, in this process) with a named key of ``contentfn keys`` (write
scope, a per-minute quota high enough never to refuse, so the accounting still runs per request).

The load generator (:mod:`tests.bench._loadgen`) is a separate process per step: closed-loop
asyncio + httpx clients, ``concurrency`` of them, for a warm-up and then a measured window. Its CPU
time, the API process's and PostgreSQL's are measured per step and shown as shares of one core, so
the table says who used the two cores.

* mixed: ``GET /search`` (the default hybrid mode; most texts distinct and sent once, a fifth from a
  small hot set, as real traffic repeats popular queries), ``GET /tracks/{id}``, ``GET /tracks`` with
  a profile filter, and ``POST /analyze`` of an already analysed track (answered from the analysis
  cache, warmed before the steps).
* search: the same search traffic alone.

Per step: requests per second, p50/p95/p99 latency, errors (anything but a 2xx, or no answer).
``max_rps_at_p99_100ms``: the highest mixed-step rate whose p99 is at most 100 ms.
``search_rps``: the best search-only step's rate. Target: errors=0, search_rps >= 200 on 2 cores.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import random
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from functions.api.core import Api
from local.server import ApiServer
from shared.services import Services
from shared.store.api_keys import create_key
from tests.bench._common import (
    REPO,
    BenchDatabase,
    base_parser,
    catalogue,
    console,
    percentile,
    require_model,
    temp_workdir,
)
from tests.bench.bench_search import _FRAMINGS, _SUBJECTS

P99_BOUND_MS = 100.0
SEARCH_RPS_TARGET = 200.0
# A quota no step reaches: every request is still counted against it.
KEY_RPM = 100_000_000
MIXED_WEIGHTS = {"search": 0.40, "search_hot": 0.10, "track": 0.20, "browse": 0.15, "analyze": 0.15}
SEARCH_WEIGHTS = {"search": 0.80, "search_hot": 0.20}
HOT_QUERIES = 16
ANALYZE_TRACKS = 256
_DECADES = ("", " from the sixties", " from the seventies", " from the eighties", " from the nineties",
            " from the two thousands", " of today", " from the fifties", " from the twenties")  # fmt: skip
_MOODS = ("", " with a slow guitar", " with heavy drums", " with a piano", " sung softly", " for a rainy day",
          " with strings", " for the road", " with a choir", " in a minor key")  # fmt: skip
_PLACES = ("", " in a small town", " by the ocean", " in the city", " in the mountains", " in the desert")


def distinct_queries(seed: int) -> list[str]:
    """Every search text the steps send once (tens of thousands), shuffled; none is in the hot set."""
    texts = [
        f.format(s=s) + d + m + p
        for s in _SUBJECTS
        for f in _FRAMINGS
        for d in _DECADES
        for m in _MOODS
        for p in _PLACES
        if d or m or p
    ]
    random.Random(seed).shuffle(texts)
    return texts


def hot_queries(seed: int) -> list[str]:
    texts = [f.format(s=s) for s in _SUBJECTS for f in _FRAMINGS]
    random.Random(seed + 1).shuffle(texts)
    return texts[:HOT_QUERIES]


@dataclass
class Step:
    phase: str
    concurrency: int
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int
    requests: int
    api_cpu: float  # shares of one core over the measured window
    pg_cpu: float
    gen_cpu: float
    other_cpu: float  # the rest of the machine (other jobs on a shared host), cores
    per_kind: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # kind: (n, p50, p99)
    samples: list[str] = field(default_factory=list)


class CpuMeter:
    """CPU seconds of this process (the API) and of the PostgreSQL server's processes."""

    def __init__(self, postmaster_pid: int | None) -> None:
        self.me = psutil.Process()
        self.pg = psutil.Process(postmaster_pid) if postmaster_pid else None

    def host(self) -> float:
        """CPU seconds the whole machine spent busy so far."""
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def read(self) -> tuple[float, float]:
        t = self.me.cpu_times()
        pg = 0.0
        if self.pg is not None:
            for p in [self.pg, *self.pg.children(recursive=True)]:
                try:
                    c = p.cpu_times()
                    pg += c.user + c.system
                except psutil.NoSuchProcess:
                    pass
        return t.user + t.system, pg


def postmaster_pid(pg: BenchDatabase, work: Path) -> int | None:
    if pg.external:
        return None
    pidfile = work / "pgdata" / "postmaster.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.is_file() else None


def run_step(
    phase: str,
    plan: dict[str, Any],
    meter: CpuMeter,
) -> tuple[Step, dict[str, int]]:
    """One step in a fresh generator process; CPU is read around it (the warm-up is a small share)."""
    a0, p0 = meter.read()
    h0 = meter.host()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench._loadgen"],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    a1, p1 = meter.read()
    h1 = meter.host()
    if proc.returncode != 0:
        raise SystemExit(f"the load generator failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)
    # The server works only while the load lasts (warm-up and measured window), not while the
    # generator process starts: its CPU is taken over the load's duration.
    busy = max(float(result["wall_s"]), 1e-9)
    lat_all = [v for vs in result["latencies_ms"].values() for v in vs]
    errors = sum(result["errors"].values())
    measure_s = float(result["measure_s"])
    per_kind = {k: (len(v), percentile(v, 50), percentile(v, 99)) for k, v in result["latencies_ms"].items() if v}
    step = Step(
        phase=phase,
        concurrency=int(result["concurrency"]),
        rps=len(lat_all) / measure_s,
        p50=percentile(lat_all, 50),
        p95=percentile(lat_all, 95),
        p99=percentile(lat_all, 99),
        errors=errors,
        requests=len(lat_all),
        api_cpu=(a1 - a0) / busy,
        pg_cpu=(p1 - p0) / busy,
        gen_cpu=float(result["cpu_s"]) / busy,
        other_cpu=max(0.0, (h1 - h0) - (a1 - a0) - (p1 - p0) - float(result["cpu_s"])) / busy,
        per_kind=per_kind,
        samples=result["error_samples"],
    )
    sent: dict[str, int] = result["sent"]
    return step, sent


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "load benchmark")
    parser.add_argument("--steps", default="1,2,4,8,16,32,64", help="concurrency steps (default 1,2,4,8,16,32,64)")
    parser.add_argument("--step-s", type=float, default=10.0, help="measured seconds per step (default 10)")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="unmeasured seconds before each step (default 2)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="cProfile every request's handling; write pstats to this file"
    )
    parser.add_argument("--phases", default="mixed,search", help="which phases to run (default mixed,search)")
    args = parser.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    require_model()

    with (
        temp_workdir("contentfn-bench-load-") as work,
        BenchDatabase(work) as pg,
        catalogue(pg, work / "state", "load", args.rows, args.seed, require_api_key=True) as (services, setup),
    ):
        server: ApiServer | None = None
        api_services: Services | None = None
        profiler: HandlerProfiler | None = None
        try:
            secret = create_key(services.db, "bench-load", {"write"}, requests_per_minute=KEY_RPM)
            with services.db.connection() as conn:
                ids = [int(r[0]) for r in conn.execute("SELECT id FROM tracks ORDER BY id")]
                themes = [
                    r[0]
                    for r in conn.execute(
                        "SELECT t, count(*) FROM analyses, jsonb_array_elements_text(result->'profile'->'themes') t"
                        " GROUP BY t ORDER BY count(*) DESC LIMIT 8"
                    )
                ]
                conn.commit()
            # The API as a process of its own runs it (one embedder thread, see Settings.for_serving_http).
            api_services = Services.from_settings(services.settings.for_serving_http(), migrate=False)
            api = Api(api_services)
            profiler = HandlerProfiler(api) if args.profile is not None else None
            server = ApiServer(api, "127.0.0.1", 0)
            server.start()
            base = f"http://127.0.0.1:{server.port}"
            rng = random.Random(args.seed)
            analyze_ids = rng.sample(ids, min(ANALYZE_TRACKS, len(ids)))
            warm_up(base, secret, analyze_ids, hot_queries(args.seed))
            pools = {
                "search_hot": [
                    ["search_hot", "GET", "/search", {"q": q, "k": 10}, None] for q in hot_queries(args.seed)
                ],
                "track": [["track", "GET", f"/tracks/{i}", {}, None] for i in rng.sample(ids, min(4096, len(ids)))],
                "browse": [
                    ["browse", "GET", "/tracks", {**flt, "limit": 20}, None]
                    for flt in (
                        [{"theme": t} for t in themes]
                        + [{"sentiment": s} for s in ("positive", "negative", "neutral", "mixed")]
                        + [{"theme": t, "sentiment": "positive"} for t in themes[:4]]
                    )
                ],
                "analyze": [["analyze", "POST", "/analyze", {}, {"track_id": i, "mode": "rules"}] for i in analyze_ids],
            }
            distinct = distinct_queries(args.seed)
            meter = CpuMeter(postmaster_pid(pg, work))
            results: list[Step] = []
            used = 0
            for phase in phases:
                weights = MIXED_WEIGHTS if phase == "mixed" else SEARCH_WEIGHTS
                for conc in steps:
                    budget = int(1000 * (args.step_s + args.warmup_s))
                    if used + budget > len(distinct):
                        console.print("[yellow]out of distinct queries: later steps repeat some[/yellow]")
                        used = 0
                    search_pool = [
                        ["search", "GET", "/search", {"q": q, "k": 10}, None] for q in distinct[used : used + budget]
                    ]
                    plan = {
                        "base_url": base,
                        "api_key": secret,
                        "concurrency": conc,
                        "warmup_s": args.warmup_s,
                        "measure_s": args.step_s,
                        "weights": weights,
                        "requests": {**pools, "search": search_pool},
                        "seed": args.seed + conc,
                    }
                    step, sent = run_step(phase, plan, meter)
                    # Every search sent (warm-up included) came off the pool in order: none is sent again.
                    used += sent.get("search", 0)
                    results.append(step)
                    console.print(_row(step))
        finally:
            if server is not None:
                server.stop()
            if api_services is not None:
                api_services.close()
    if profiler is not None and args.profile is not None:
        profiler.dump(args.profile)

    print(report(results, setup.tracks, args))
    return 0


class HandlerProfiler:
    """cProfile around ``Api.handle`` in every worker thread (one profile per thread, merged at the
    end): where a request's time goes inside the API, the HTTP server's event loop aside."""

    def __init__(self, api: Api) -> None:
        self._local = threading.local()
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        inner = api.handle

        def handle(request: Any) -> Any:
            prof = getattr(self._local, "prof", None)
            if prof is None:
                prof = self._local.prof = cProfile.Profile()
                with self._lock:
                    self._profiles.append(prof)
            prof.enable()
            try:
                return inner(request)
            finally:
                prof.disable()

        api.handle = handle  # type: ignore[method-assign]

    def dump(self, path: Path) -> None:
        if not self._profiles:
            return
        stats = pstats.Stats(self._profiles[0], stream=sys.stderr)
        for prof in self._profiles[1:]:
            stats.add(prof)
        stats.dump_stats(path)
        stats.sort_stats("cumulative").print_stats(40)


def warm_up(base: str, secret: str, analyze_ids: Sequence[int], hot: Sequence[str]) -> None:
    """Load the model, fill the analysis cache for the analyzed tracks and the hot queries' vectors."""
    with httpx.Client(base_url=base, headers={"x-api-key": secret}, timeout=60.0) as client:
        for q in hot:
            _ok(client.get("/search", params={"q": q, "k": 10}))
        for i in analyze_ids:
            _ok(client.post("/analyze", json={"track_id": i, "mode": "rules"}))
        again = _ok(client.post("/analyze", json={"track_id": analyze_ids[0], "mode": "rules"}))
        if not again.get("cached"):
            raise SystemExit("POST /analyze of an analysed track was not answered from the cache")


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise SystemExit(f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
                         f"{response.text[:200]}")  # fmt: skip
    body: dict[str, Any] = response.json()
    return body


def _row(s: Step) -> str:
    return (
        f"  {s.phase:<6} {s.concurrency:>4} {s.rps:8.1f} {s.p50:8.1f} {s.p95:8.1f} {s.p99:8.1f} {s.errors:>6}"
        f"  {s.api_cpu:5.2f} {s.pg_cpu:5.2f} {s.gen_cpu:5.2f} {s.other_cpu:5.2f}"
        f"  {_per_request(s.api_cpu, s.rps):6.2f} {_per_request(s.pg_cpu, s.rps):5.2f}"
    )


def _per_request(cores: float, rps: float) -> float:
    """CPU milliseconds per answered request: a figure that holds on a shared machine, unlike rps."""
    return cores / rps * 1000 if rps else float("nan")


def report(results: Sequence[Step], tracks: int, args: Any) -> str:
    mixed = [s for s in results if s.phase == "mixed"]
    search = [s for s in results if s.phase == "search"]
    within = [s.rps for s in mixed if s.p99 <= P99_BOUND_MS]
    max_rps = max(within, default=0.0)
    search_rps = max((s.rps for s in search), default=0.0)
    errors = sum(s.errors for s in results)
    lines = [
        f"load benchmark: {tracks:,} tracks, {os.cpu_count()} cores, {args.step_s:.0f} s per step after "
        f"{args.warmup_s:.0f} s warm-up; mixed = {_mix(MIXED_WEIGHTS)}",
        "  phase  conc      rps   p50 ms   p95 ms   p99 ms errors  cores: api   pg   gen other  cpu ms/req: api   pg",
        *(_row(s) for s in results),
    ]
    for label, group in (("mixed", mixed), ("search", search)):
        best = max(group, key=lambda s: s.rps, default=None)
        if best is not None:
            kinds = ", ".join(f"{k} n={n} p50 {p50:.1f} p99 {p99:.1f}" for k, (n, p50, p99) in best.per_kind.items())
            lines.append(f"  best {label} step (concurrency {best.concurrency}): {kinds}")
    for s in results:
        for sample in s.samples:
            lines.append(f"  error ({s.phase} c={s.concurrency}): {sample}")
    per_min = max_rps * 60
    lines.append(
        f"  at p99 <= {P99_BOUND_MS:.0f} ms: {max_rps:.0f} requests/s = {per_min:,.0f} a minute "
        f"({per_min / 1000:.0f}x the 1,000 a minute of the product this replaces); search alone {search_rps:.0f}/s, "
        f"target >= {SEARCH_RPS_TARGET:.0f}: {'met' if search_rps >= SEARCH_RPS_TARGET else 'MISSED'}; "
        f"errors {errors}: {'met' if errors == 0 else 'MISSED'}"
    )
    lines.append(f"bench-load max_rps_at_p99_100ms={max_rps:.1f} errors={errors} search_rps={search_rps:.1f}")
    return "\n".join(lines)


def _mix(weights: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in weights.items())


if __name__ == "__main__":
    sys.exit(main())
