"""gpu-probe: what slows the detector's model calls down on this host, one factor at a time.

The end-to-end benchmark says how fast the pipeline is; this says why not faster. Each scenario runs
the detector's own ``run_raw`` on a uint8 batch for a few seconds and prints images per second and
milliseconds per call, alone and next to what the pipeline puts beside it: a second inference thread,
decode threads, memory churn (with the C library's malloc, and as the pipeline tunes it), other
processes on the same GPU, batch sizes that change from call to call, the service's device process
fed as the pipelines feed it (the ms figure there is the device's own busy time per call), and
whether overlapping calls on one session, or on two, still give each batch its own right answer.

    python -m tests.bench.gpu_probe [--batch 128] [--seconds 4] [--model PATH]
"""

from __future__ import annotations

import argparse
import io
import mmap
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from infra.gpu_worker.memory import keep_freed_memory
from shared.vision.decode import decode_image
from shared.vision.detector import Detector, ModelSpec
from shared.vision.pinned import pin, unpin
from tests.bench.bench_gpu import bench_model


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=640)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--load-threads", type=int, default=12, help="threads of background work in load scenarios")
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--only", default="", help="comma-separated scenario names to run")
    p.add_argument("--load-processes", type=int, default=8, help="processes of CPU load in the procs scenarios")
    p.add_argument("--load-threads-per-process", type=int, default=2, help="decode threads in each of them")
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


def _timed(calls: list[Callable[[], object]], seconds: float, rows: int) -> tuple[float, float]:
    """(images per second, mean ms per call) with one thread per callable, each calling it in a loop."""
    counts = [0] * len(calls)
    spent = [0.0] * len(calls)
    end = time.perf_counter() + seconds

    def loop(k: int) -> None:
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            calls[k]()
            spent[k] += time.perf_counter() - t0
            counts[k] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(len(calls))]
    for w in workers:
        w.start()
    for w in workers:  # a call that never returns is reported, not waited for (one did, on an H100)
        w.join(max(0.0, end + STALL_S - time.perf_counter()))
    if any(w.is_alive() for w in workers):
        raise Stalled(f"a call did not return within {STALL_S:.0f} s of the scenario's end ({sum(counts)} calls done)")
    elapsed = time.perf_counter() - started
    return sum(counts) * rows / elapsed, 1000 * sum(spent) / max(sum(counts), 1)


def _calls(detector: Detector, pixels: np.ndarray, seconds: float, threads: int) -> tuple[float, float]:
    """(images per second, mean ms per call) with ``threads`` threads calling ``run_raw`` at once."""
    owns = [pixels] + [pixels.copy() for _ in range(threads - 1)]
    return _timed([lambda own=own: detector.run_raw(own) for own in owns], seconds, len(pixels))


def _mismatch(out: np.ndarray, ref: np.ndarray) -> float:
    """Largest difference between two raw outputs' box and score numbers (the class column left out:
    a near tie may pick another class); a few hundredths at most between two correct runs."""
    if out.shape != ref.shape:
        return float("inf")
    axis = 1 if out.shape[1] == 6 else 2
    keep = np.take(out, range(5), axis=axis) - np.take(ref, range(5), axis=axis)
    return float(np.abs(keep).max())


def _checked(
    runs: list[Callable[[np.ndarray], np.ndarray]], inputs: list[np.ndarray], refs: list[np.ndarray], seconds: float
) -> tuple[float, float, float]:
    """Each thread k calls runs[k](inputs[k]) in a loop: (img/s, ms per call, worst mismatch to refs[k])."""
    worst = [0.0] * len(runs)

    def call(k: int) -> Callable[[], object]:
        def once() -> None:
            worst[k] = max(worst[k], _mismatch(runs[k](inputs[k]), refs[k]))

        return once

    rate, ms = _timed([call(k) for k in range(len(runs))], seconds, len(inputs[0]))
    return rate, ms, max(worst)


def _load_main(threads: int, cores: list[int] | None, stop: Any) -> None:
    """A stand-in for a pipeline process's CPU work: ``threads`` threads decoding and letterboxing."""
    if cores:
        os.sched_setaffinity(0, cores)
    jpeg = _jpeg()
    canvas = np.zeros((640, 640, 3), np.uint8)

    def work() -> None:
        from shared.vision.boxes import letterbox_into

        while not stop.is_set():
            letterbox_into(decode_image(jpeg, max_bytes=1 << 26, max_pixels=1 << 28).pixels, canvas)

    pool = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


class _Load:
    """``processes`` processes of ``threads`` decode threads each, optionally kept off some cores."""

    def __init__(self, processes: int, threads: int, cores: list[int] | None = None) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.procs = [ctx.Process(target=_load_main, args=(threads, cores, self.stop)) for _ in range(processes)]

    def __enter__(self) -> _Load:
        for p in self.procs:
            p.start()
        time.sleep(3.0)  # imported and decoding
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()


class _DeviceProcess:
    """The service's own device process (``CONTENTFN_GPU_DEVICE_PROCESS``) and a client of it here."""

    def __init__(self, model: Path, size: int, calls: int = 1, core: int | None = None) -> None:
        import tempfile

        from infra.gpu_worker.device import DeviceAddress, RemoteDetector
        from infra.gpu_worker.pool import _device_main
        from shared.config import load_settings

        self.settings = load_settings(
            data_dir=Path(tempfile.mkdtemp(prefix="contentfn-probe-")),
            detector_model_path=model,
            detector_input_size=size,
            gpu_device_calls=calls,
        )
        self.address = DeviceAddress.fresh()
        ctx = mp.get_context("spawn")
        ready, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_device_main, args=(self.settings, self.address, child), daemon=True)
        self.proc.start()
        child.close()
        if not ready.poll(300):
            raise Stalled("the device process was not ready within 300 s")
        ready.recv()
        if core is not None:  # its main thread: the threads serving clients start later and inherit it
            os.sched_setaffinity(self.proc.pid, [core])
        self.clients: list[Any] = []
        self._remote = RemoteDetector

    def client(self) -> Any:
        remote = self._remote(self.settings, self.address)
        self.clients.append(remote)
        return remote

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.proc.kill()
        self.proc.join(10)


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

    # What differs between a call in the device process and one here: the buffers (shared memfd
    # mappings, a page-locked output), the process boundary, the CPU load of the pipelines beside
    # it; and whether calls that overlap on one session, or on two, still give the right answer.
    model = bench_model(args.model)
    out = detector.output_buffer(args.batch)
    scenario("alone-out-pinned", lambda: _timed([lambda: detector.run_raw(pixels, out=out)], args.seconds, args.batch))

    def memfd_in() -> tuple[float, float]:
        fd = os.memfd_create("probe", os.MFD_CLOEXEC)
        os.ftruncate(fd, pixels.nbytes)
        shared = np.ndarray(pixels.shape, np.uint8, buffer=mmap.mmap(fd, pixels.nbytes))
        shared[...] = pixels
        pinned = pin(shared)
        try:
            rate, ms = _timed([lambda: detector.run_raw(shared, out=out)], args.seconds, args.batch)
            print(f"  (memfd input page-locked: {pinned})")
            return rate, ms
        finally:
            if pinned:
                unpin(shared)
            os.close(fd)

    scenario("memfd-in", memfd_in)

    def alternating(sizes: tuple[int, ...]) -> tuple[float, float]:
        """Calls whose batch size changes from one to the next (partial batches padded to 64)."""
        for rows in sizes:
            detector.run_raw(pixels[:rows], out=out)
        turn = [0]

        def call() -> None:
            rows = sizes[turn[0] % len(sizes)]
            turn[0] += 1
            detector.run_raw(pixels[:rows], out=out)

        rate, ms = _timed([call], args.seconds, args.batch)
        return rate * sum(sizes) / len(sizes) / args.batch, ms

    scenario("shapes-128-64-alternating", lambda: alternating((args.batch, args.batch // 2)))
    scenario("shapes-64-only", lambda: alternating((args.batch // 2,)))
    cores = os.cpu_count() or 1
    procs = args.load_processes

    def loaded(run: Callable[[], tuple[float, float]], keep_off: list[int] | None = None) -> tuple[float, float]:
        with _Load(procs, args.load_threads_per_process, keep_off):
            return run()

    scenario(f"alone+procs-x{procs}", lambda: loaded(lambda: _calls(detector, pixels, args.seconds, 1)))

    def via_device(
        calls: int = 1,
        clients: int = 1,
        load: bool = False,
        own_core: bool = False,
        blocks: int = 1,
        rewrite: bool = False,
        warm: bool = False,
    ) -> tuple[float, float]:
        """Calls through the device process; the ms figure is the device's own busy time per call.
        ``blocks``: input buffers per client, used in turn (as a pipeline's batch buffers are);
        ``rewrite``: each is filled anew before its call (as decoding does); ``warm``: every padded
        batch size runs first (as each pipeline's start does)."""
        from infra.gpu_worker.device import device_usage
        from shared.vision.sessions import batch_sizes

        dev = _DeviceProcess(model, args.size, calls, core=cores - 1 if own_core else None)
        try:
            remotes = [dev.client() for _ in range(clients)]
            fns = []
            for r in remotes:
                ins = [r.host_buffer(pixels.shape) for _ in range(blocks)]
                for buf in ins:
                    buf[...] = pixels
                o = r.output_buffer(args.batch)
                if warm:
                    for rows in batch_sizes(args.batch):
                        r.run_raw(ins[0][:rows])
                turn = [0]

                def call(r: Any = r, ins: list[np.ndarray] = ins, o: np.ndarray = o, turn: list[int] = turn) -> None:
                    buf = ins[turn[0] % len(ins)]
                    turn[0] += 1
                    if rewrite:
                        np.copyto(buf, pixels)
                    r.run_raw(buf, out=o)

                call()
                fns.append(call)
            before = device_usage(dev.address)
            if load:
                with _Load(procs, args.load_threads_per_process, list(range(cores - 1)) if own_core else None):
                    rate, _ = _timed(fns, args.seconds, args.batch)
            else:
                rate, _ = _timed(fns, args.seconds, args.batch)
            after = device_usage(dev.address)
            if before is None or after is None or after["calls"] == before["calls"]:
                return rate, float("nan")
            return rate, 1000 * (after["busy_s"] - before["busy_s"]) / (after["calls"] - before["calls"])
        finally:
            dev.close()

    scenario("device-process", lambda: via_device())
    scenario("device-process-x2-clients", lambda: via_device(clients=2))
    scenario(f"device-process+procs-x{procs}", lambda: via_device(load=True))
    scenario(f"device-process-own-core+procs-x{procs}", lambda: via_device(load=True, own_core=True))
    scenario("device-process-warm-shapes", lambda: via_device(warm=True))
    scenario("device-process-3-blocks", lambda: via_device(blocks=3))
    scenario("device-process-3-blocks-rewritten", lambda: via_device(blocks=3, rewrite=True))
    scenario("device-process-x8-clients", lambda: via_device(clients=8))
    scenario(
        f"device-process-like-bench+procs-x{procs}",
        lambda: via_device(clients=8, blocks=3, rewrite=True, warm=True, load=True),
    )

    # Distinct inputs per thread, each output checked against the same input's output run alone.
    rng = np.random.default_rng(1)
    inputs = [detector.host_buffer(pixels.shape) for _ in range(2)]
    for buf in inputs:
        buf[...] = rng.integers(0, 255, pixels.shape, np.uint8)
    refs = [np.array(detector.run_raw(buf)) for buf in inputs]

    def checked(name: str, runs: list[Callable[[np.ndarray], np.ndarray]]) -> None:
        if wanted and name not in wanted:
            return
        try:
            rate, ms, worst = _checked(runs, inputs, refs, args.seconds)
        except Stalled as exc:
            print(f"{name:<28} stalled: {exc}", flush=True)
            return
        verdict = "same outputs" if worst < 0.5 else "OUTPUTS DIFFER"
        print(f"{name:<28} {rate:9.1f} img/s {ms:9.1f} ms/call  {verdict} (max diff {worst:.3g})", flush=True)

    checked("one-session-x1-checked", [detector.run_raw])
    checked("one-session-x2-threads", [detector.run_raw, detector.run_raw])
    second = Detector(ModelSpec(path=model, input_size=args.size))
    checked("two-sessions-x2-threads", [detector.run_raw, second.run_raw])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
