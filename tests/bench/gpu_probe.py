"""gpu-probe: what slows the detector's model calls down on this host, one factor at a time.

The end-to-end benchmark says how fast the pipeline is; this says why not faster. Each scenario runs
the detector's own ``run_raw`` on a uint8 batch for a few seconds and prints images per second and
milliseconds per call, alone and next to what the pipeline puts beside it: a second inference thread,
decode threads, memory churn (with the C library's malloc, and as the pipeline tunes it), other
processes on the same GPU.

    python -m tests.bench.gpu_probe [--batch 128] [--seconds 4] [--model PATH]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from infra.gpu_worker.memory import keep_freed_memory
from shared.vision.decode import decode_image
from shared.vision.detector import Detector, ModelSpec
from tests.bench.bench_gpu import bench_model


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=640)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--load-threads", type=int, default=12, help="threads of background work in load scenarios")
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--only", default="", help="comma-separated scenario names to run")
    return p.parse_args()


def _jpeg() -> bytes:
    yy, xx = np.mgrid[0:480, 0:640]
    px = np.stack([xx % 256, yy % 256, (xx * yy) % 256], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", quality=90)
    return buf.getvalue()


STALL_S = 30.0


class Stalled(RuntimeError):
    """A scenario's calls did not come back."""


def _calls(detector: Detector, pixels: np.ndarray, seconds: float, threads: int) -> tuple[float, float]:
    """(images per second, mean ms per call) with ``threads`` threads calling ``run_raw`` at once."""
    counts = [0] * threads
    spent = [0.0] * threads
    end = time.perf_counter() + seconds

    def loop(k: int) -> None:
        own = pixels if k == 0 else pixels.copy()
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            detector.run_raw(own)
            spent[k] += time.perf_counter() - t0
            counts[k] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:  # a call that never returns is reported, not waited for (one did, on an H100)
        w.join(max(0.0, end + STALL_S - time.perf_counter()))
    if any(w.is_alive() for w in workers):
        raise Stalled(f"a call did not return within {STALL_S:.0f} s of the scenario's end ({sum(counts)} calls done)")
    elapsed = time.perf_counter() - started
    calls = sum(counts)
    return calls * len(pixels) / elapsed, 1000 * sum(spent) / max(calls, 1)


def _background(kind: str, n: int, stop: threading.Event, jpeg: bytes, detector: Detector) -> list[threading.Thread]:
    def decode() -> None:
        while not stop.is_set():
            detector.prepare(decode_image(jpeg, max_bytes=1 << 26, max_pixels=1 << 28))

    def churn() -> None:  # what decoding does to the allocator, without the decoding
        while not stop.is_set():
            a = np.empty(640 * 640 * 3, np.uint8)
            a[::4096] = 1
            del a

    def spin() -> None:  # pure-Python work: holds the GIL
        while not stop.is_set():
            sum(range(1000))

    target: Callable[[], None] = {"decode": decode, "churn": churn, "spin": spin}[kind]
    threads = [threading.Thread(target=target, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def _process_main(model: str, size: int, batch: int, seconds: float, start_at: float, out: mp.Queue) -> None:
    detector = Detector(ModelSpec(path=Path(model), input_size=size))
    pixels = detector.host_buffer((batch, size, size, 3))
    detector.run_raw(pixels)
    time.sleep(max(0.0, start_at - time.time()))
    out.put(_calls(detector, pixels, seconds, 1))


def _processes(args: argparse.Namespace, n: int) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    start_at = time.time() + 25.0  # every process loaded and warm before any is timed
    procs = [
        ctx.Process(
            target=_process_main,
            args=(str(bench_model(args.model)), args.size, args.batch, args.seconds, start_at, out),
        )
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
    except queue.Empty:
        raise Stalled(f"not every one of {n} processes reported within 120 s") from None
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    return sum(r[0] for r in results), sum(r[1] for r in results) / n


def main() -> int:
    args = _args()
    detector = Detector(ModelSpec(path=bench_model(args.model), input_size=args.size))
    print(f"detector {detector.name}: {detector.provider}, batch {args.batch} at {args.size}, pinned {detector.pinned}")
    pixels = detector.host_buffer((args.batch, args.size, args.size, 3))
    pixels[:] = np.random.default_rng(0).integers(0, 255, pixels.shape, np.uint8)
    plain = np.array(pixels)  # pageable copy
    for b in {1, args.batch}:
        detector.run_raw(pixels[:b])
    jpeg = _jpeg()
    wanted = {s for s in args.only.split(",") if s}
    n = args.load_threads

    def scenario(name: str, run: Callable[[], tuple[float, float]]) -> None:
        if wanted and name not in wanted:
            return
        try:
            rate, ms = run()
        except Stalled as exc:
            print(f"{name:<28} stalled: {exc}", flush=True)
            return
        print(f"{name:<28} {rate:9.1f} img/s {ms:9.1f} ms/call", flush=True)

    def with_load(kind: str, threads: int = 1) -> tuple[float, float]:
        stop = threading.Event()
        bg = _background(kind, n, stop, jpeg, detector)
        try:
            return _calls(detector, pixels, args.seconds, threads)
        finally:
            stop.set()
            for t in bg:
                t.join()

    scenario("alone", lambda: _calls(detector, pixels, args.seconds, 1))
    scenario("alone-pageable", lambda: _calls(detector, plain, args.seconds, 1))
    scenario("two-threads", lambda: _calls(detector, pixels, args.seconds, 2))
    scenario(f"decode-x{n}", lambda: with_load("decode"))
    scenario(f"churn-x{n}", lambda: with_load("churn"))
    scenario(f"spin-x{n}", lambda: with_load("spin"))
    scenario(f"two-threads+decode-x{n}", lambda: with_load("decode", 2))
    scenario("processes-x2", lambda: _processes(args, 2))
    scenario("processes-x4", lambda: _processes(args, 4))

    def kept_churn() -> tuple[float, float]:  # the pipeline's malloc tuning; it cannot be undone, so last
        keep_freed_memory(512)
        return with_load("churn")

    scenario(f"churn-x{n}-kept", kept_churn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
