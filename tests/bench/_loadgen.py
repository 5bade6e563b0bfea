"""The load generator of ``bench_load``: closed-loop asyncio + httpx clients against a running API.

Run as its own process (``python -m tests.bench._loadgen`` with a JSON plan on stdin, one JSON
result on stdout) so that its CPU time is its own and can be measured apart from the server's.
It imports only httpx: no model, no numpy, no database driver.

A plan names the base URL, the key, the concurrency, how long to warm up and to measure, and the
requests to draw from: each is ``[kind, method, path, params, body]`` with a weight per kind.
Every client task loops: draw a kind by weight, take that kind's next request (round robin, so
distinct search texts stay distinct), send it, record its latency and whether it was a 2xx.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

import httpx

__all__ = ["run_plan"]


async def _run(plan: dict[str, Any]) -> dict[str, Any]:
    concurrency = int(plan["concurrency"])
    warmup_s, measure_s = float(plan["warmup_s"]), float(plan["measure_s"])
    weights: dict[str, float] = plan["weights"]
    pools: dict[str, list[list[Any]]] = plan["requests"]
    kinds = [k for k in weights if weights[k] > 0 and pools.get(k)]
    cum = [weights[k] for k in kinds]
    cursor = dict.fromkeys(kinds, 0)
    rng = random.Random(plan.get("seed", 7))
    latencies: dict[str, list[float]] = {k: [] for k in kinds}
    errors: dict[str, int] = dict.fromkeys(kinds, 0)
    samples: list[str] = []
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + measure_s

    def next_request() -> tuple[str, list[Any]]:
        kind = rng.choices(kinds, cum)[0]
        pool = pools[kind]
        req = pool[cursor[kind] % len(pool)]
        cursor[kind] += 1
        return kind, req

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"x-api-key": plan["api_key"]}
    async with httpx.AsyncClient(base_url=plan["base_url"], headers=headers, limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            while True:
                began = time.perf_counter()
                if began >= stop_at:
                    return
                kind, (_, method, path, params, body) = next_request()
                ok = True
                try:
                    resp = await client.request(method, path, params=params or None, json=body)
                    ok = 200 <= resp.status_code < 300
                    if not ok and len(samples) < 5:
                        samples.append(f"{method} {path} -> {resp.status_code}: {resp.text[:160]}")
                except httpx.HTTPError as exc:
                    ok = False
                    if len(samples) < 5:
                        samples.append(f"{method} {path} -> {type(exc).__name__}: {exc}")
                ended = time.perf_counter()
                if began >= measure_from and ended <= stop_at:
                    latencies[kind].append((ended - began) * 1000)
                    errors[kind] += not ok

        cpu0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu = time.process_time() - cpu0
    return {
        "concurrency": concurrency,
        "measure_s": measure_s,
        "latencies_ms": latencies,
        "errors": errors,
        "error_samples": samples,
        "sent": cursor,
        "cpu_s": cpu,
        "wall_s": time.perf_counter() - start,
    }


def run_plan(plan: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_run(plan))


if __name__ == "__main__":
    json.dump(run_plan(json.load(sys.stdin)), sys.stdout)
