"""bench-gpu: end-to-end images/s, JPEG bytes in the queue -> detections in PostgreSQL.

For each batch size, a fresh database gets N image rows and N queued detection jobs pointing at
JPEG objects in a local bucket; the GPU worker (claim -> decode pool -> micro-batch -> model ->
write + ack) runs until every image is done. The same run times a naive loop (claim one job,
decode, infer, write, ack, repeat) and the model alone (uint8 batches already in host memory).

Runs on CPU anywhere; on a machine with onnxruntime-gpu it uses the CUDA (or TensorRT) provider
with uint8 input and IO binding. The last line is machine-readable:

    bench-gpu device=... best_img_per_s=... naive_img_per_s=... ratio=... best_batch=...
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from infra.gpu_worker.memory import keep_freed_memory
from infra.gpu_worker.metrics import STAGES
from infra.gpu_worker.pool import WorkerPool, cpu_count, default_processes
from infra.gpu_worker.worker import GpuWorker
from shared.config import load_settings
from shared.queue.kinds import DetectPayload
from shared.services import Services
from shared.store import ledger
from shared.vision.decode import decode_image
from shared.vision.detector import Detector, ModelSpec, default_model_path
from shared.vision.store import DETECT_JOB, ImageResult, write_image_results
from tests.bench._common import BenchDatabase, bench_settings, console, temp_workdir

BUCKET = "bench"
STALL_S = 120.0  # a configuration that finishes no image for this long is reported failed


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--images", type=int, default=0, help="images per batch-size run (default: 8192 on GPU, 128 on CPU)")
    p.add_argument("--naive-images", type=int, default=0, help="images for the naive loop (default: 1024 GPU, 32 CPU)")
    p.add_argument("--batches", default="1,8,32,64,128", help="comma-separated batch sizes")
    p.add_argument("--size", type=int, default=640, help="model input size (letterbox target)")
    p.add_argument("--photo", default="640x480", help="JPEG size WxH")
    p.add_argument(
        "--in-flight", type=int, default=0, help="batches in flight per instance (0: 2 per process, at least 4)"
    )
    p.add_argument(
        "--processes",
        default="0",
        help="pipeline processes, or a comma-separated list to run each (0: as the service picks)",
    )
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument(
        "--infer-threads", type=int, default=0, help="inference threads per process (0: as the service picks)"
    )
    p.add_argument("--decode-threads", type=int, default=0, help="0: one per core")
    p.add_argument("--photo-dir", type=Path, default=None, help="PNG photos to make the JPEGs from")
    p.add_argument("--model", type=Path, default=None, help="ONNX detector (default: the nudenet wheel's 320n.onnx)")
    p.add_argument("--providers", default="", help="comma-separated ORT providers (default: best available)")
    p.add_argument(
        "--device-process",
        nargs="?",
        const="on",
        default="off",
        choices=["off", "on", "both"],
        help="one process owns the device and the pipelines send it batches (CONTENTFN_GPU_DEVICE_PROCESS); "
        "'both' runs each configuration with and without",
    )
    p.add_argument(
        "--provider-options",
        default=os.environ.get("CONTENTFN_DETECTOR_PROVIDER_OPTIONS", ""),
        help='options per provider for every session of the run, as JSON: {"CUDAExecutionProvider": {"k": "v"}}',
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=0.0,
        help="stop starting configurations once the next would likely end past this many seconds from "
        "the start (the longest one so far as the guess), and report those done (0: no budget)",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "fp16"],
        default="fp32",
        help="the model's precision for every session of the run (CONTENTFN_DETECTOR_PRECISION)",
    )
    p.add_argument(
        "--device-calls",
        default="1",
        help="model calls the device process runs at once (CONTENTFN_GPU_DEVICE_CALLS), or a comma-separated list",
    )
    p.add_argument(
        "--pageable", action="store_true", help="plain (pageable) batch buffers on a GPU instead of page-locked ones"
    )
    return p.parse_args()


def device_name(detector: Detector) -> str:
    if not detector.on_gpu:
        return "cpu"
    gpu = "gpu"
    if shutil.which("nvidia-smi"):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, check=False
        )
        gpu = (out.stdout.strip().splitlines() or ["gpu"])[0]
    provider = detector.provider.removesuffix("ExecutionProvider").lower()
    return f"{provider}:{gpu.replace(' ', '_')}"


SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def sample_photos() -> list[np.ndarray]:
    """scikit-image's sample photos as RGB arrays; [] where scikit-image is not installed."""
    try:
        from skimage import data as skdata
    except ImportError:
        return []
    bases = [np.asarray(getattr(skdata, name)()) for name in SAMPLE_PHOTOS]
    return [np.stack([b] * 3, axis=-1) if b.ndim == 2 else b[..., :3] for b in bases]


def photos(n: int, width: int, height: int, seed: int = 7, photo_dir: Path | None = None) -> list[bytes]:
    """``n`` distinct JPEGs made from real photos (``photo_dir``, else scikit-image's samples), with a
    small random patch each; synthetic scenes (in which the detector finds nothing) if neither."""
    rng = np.random.default_rng(seed)
    bases = (
        [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photo_dir.glob("*.png"))] if photo_dir else []
    ) or sample_photos()
    if not bases:
        yy, xx = np.mgrid[0:height, 0:width]
        bases = [
            np.stack([(xx * k) % 256, (yy * k) % 256, ((xx + yy) * k) % 256], -1).astype(np.uint8) for k in (1, 2, 3)
        ]
    out = []
    for i in range(n):
        base = Image.fromarray(bases[i % len(bases)]).resize((width, height), Image.Resampling.BILINEAR)
        px = np.asarray(base).copy()
        y, x = rng.integers(0, height - 24), rng.integers(0, width - 24)
        px[y : y + 24, x : x + 24] = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)  # distinct content
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def seed_jobs(svc: Services, keys: list[str], label: str) -> None:
    """N image rows and N detection jobs in two statements (what ingest would have queued)."""
    with svc.db.connection() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "INSERT INTO images (content_hash, bucket, key, bytes, format)"
                " SELECT %s || k, %s, k, 0, 'jpeg' FROM unnest(%s::text[]) AS k RETURNING id",
                (f"{label}:", BUCKET, keys),
            ).fetchall()
        ]
        conn.execute(
            "INSERT INTO jobs (kind, payload, dedup_key, max_attempts)"
            " SELECT %s, jsonb_build_object('image_id', i, 'bucket', %s::text, 'key', k), 'detect:' || i, 5"
            " FROM unnest(%s::bigint[], %s::text[]) AS u(i, k)",
            (DETECT_JOB, BUCKET, ids, keys),
        )
        conn.commit()


def done_count(svc: Services) -> int:
    with svc.db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM images WHERE status <> 'pending'").fetchone()
        conn.commit()
    return int(row[0]) if row else 0


def check_rows(svc: Services, n: int) -> tuple[int, int]:
    with svc.db.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM images WHERE status = 'done'), (SELECT count(*) FROM detections),"
            " (SELECT count(*) FROM jobs)"
        ).fetchone()
        conn.commit()
    assert row is not None
    done, dets, left = map(int, row)
    if done != n or left:
        raise SystemExit(f"bench-gpu: {done} of {n} images done, {left} jobs left: the worker lost work")
    return done, dets


def process_counters(pid: int | None = None) -> tuple[float, int]:
    """(CPU seconds, minor page faults) of a process so far: this one (``None``), else from /proc."""
    if pid is None:
        use = resource.getrusage(resource.RUSAGE_SELF)
        return use.ru_utime + use.ru_stime, use.ru_minflt
    # Fields after the command name: state is the 3rd field, so minflt (10th) is at 7, utime/stime at 11/12.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[7])


def host_counters(runner: GpuWorker | WorkerPool) -> dict[str, tuple[float, int]]:
    """CPU seconds and minor page faults, summed over the pipeline processes, and the device process's."""
    if isinstance(runner, GpuWorker):
        return {"pipelines": process_counters()}
    pipelines, device = runner.pids()
    per = [process_counters(pid) for pid in pipelines]
    out = {"pipelines": (sum(c for c, _ in per), sum(f for _, f in per))}
    if device is not None:
        out["device"] = process_counters(device)
    return out


def host_line(before: dict[str, tuple[float, int]], after: dict[str, tuple[float, int]], n: int) -> str:
    """CPU milliseconds and minor page faults per image, per kind of process (Postgres not counted)."""
    parts = []
    for who in after:
        cpu, faults = (after[who][0] - before[who][0], after[who][1] - before[who][1])
        parts.append(f"{who} {1000 * cpu / n:.2f} ms CPU, {faults / n:.0f} page faults")
    return "host, per image: " + "; ".join(parts)


def run_worker(
    svc: Services, detector: Detector, n: int, processes: int
) -> tuple[float, dict[str, float], dict[str, Any] | None, str]:
    """Seconds until all ``n`` images are done, the pipeline's stage seconds summed over processes,
    the device process's usage (None without one) and the host CPU and page faults per image."""
    # Both warm up the batch shapes (and the pool waits for every process's model) before timing.
    pooled = processes > 1 or svc.settings.gpu_device_process
    runner = WorkerPool(svc, processes, streams=False, grace_s=30).start() if pooled else GpuWorker(svc, detector)
    if isinstance(runner, GpuWorker):
        runner.start()
    device = runner.device_usage() if isinstance(runner, WorkerPool) else None  # after the warm-up calls
    counters = host_counters(runner)
    started = time.perf_counter()
    try:
        done, progressed = 0, time.monotonic()
        while done < n:
            time.sleep(0.01)
            now_done = done_count(svc)
            if now_done > done:
                done, progressed = now_done, time.monotonic()
            elif time.monotonic() - progressed > STALL_S:  # jobs dead-lettered, or the device wedged
                raise RuntimeError(f"no image finished in {STALL_S:.0f} s ({done} of {n} done)")
        elapsed = time.perf_counter() - started
        host = host_line(counters, host_counters(runner), n)
        usage = None
        if isinstance(runner, GpuWorker):
            snaps = [runner.metrics.snapshot(runner.max_batch)]
        else:
            after = runner.device_usage()
            if device is not None and after is not None:
                usage = {k: after[k] - device[k] for k in ("calls", "images", "busy_s", "shape_changes")} | {
                    k: after[k] for k in ("peak_running", "blocks", "pinned_blocks")
                }
            time.sleep(0.6)  # one more report from every pipeline
            snaps = list(runner.snapshots().values())
    finally:
        runner.stop()
    return elapsed, {k: sum(float(s.get(f"stage_{k}_s", 0.0)) for s in snaps) for k in STAGES}, usage, host


def stage_line(stages: dict[str, float], n: int) -> str:
    """Milliseconds per image in each stage, summed over the threads that run it: a stage whose figure
    times the images per second exceeds its thread count is the bottleneck."""
    return "stages, ms per image (thread time): " + ", ".join(f"{k} {1000 * v / n:.2f}" for k, v in stages.items())


def run_naive(svc: Services, detector: Detector, n: int) -> float:
    """One job at a time, every step in turn: the loop the worker replaces."""
    s = svc.settings
    started = time.perf_counter()
    for _ in range(n):
        (claimed,) = svc.queue.claim(DETECT_JOB, 1)
        p = DetectPayload.from_job(claimed.job)
        with svc.blob.open(p.bucket, p.key, max_bytes=s.image_max_bytes) as f:
            image = decode_image(f.read(), max_bytes=s.image_max_bytes, max_pixels=s.image_max_pixels)
        (found,) = detector.detect([image])
        with svc.db.connection() as conn:
            write_image_results(
                conn, detector.name, [ImageResult(p.image_id, image.width, image.height, "jpeg", tuple(found))]
            )
            ledger.record_many(conn, [f"image:{p.image_id}"], "detected", "ok", 0.0)
            svc.queue.ack([claimed], conn=conn)
            conn.commit()
    return time.perf_counter() - started


def host_prepare_rate(detector: Detector, jpegs: list[bytes], seconds: float = 1.0) -> float:
    """Images per second one thread decodes and letterboxes: what each core adds to the host side."""
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        image = decode_image(jpegs[n % len(jpegs)], max_bytes=1 << 26, max_pixels=1 << 28, draft_to=detector.input_size)
        detector.prepare(image)
        n += 1
    return n / (time.perf_counter() - started)


def model_only(detector: Detector, batch: int, seconds: float = 3.0) -> float:
    """Images per second through the model alone, the uint8 batch in a host buffer like the worker's."""
    pixels = detector.host_buffer((batch, detector.input_size, detector.input_size, 3))
    pixels[:] = np.random.default_rng(0).integers(0, 255, pixels.shape, np.uint8)
    try:
        detector.run_raw(pixels)
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            detector.run_raw(pixels)
            n += batch
        return n / (time.perf_counter() - started)
    finally:
        detector.release_buffer(pixels)


def resident_ceiling(model: Path, batch: int, size: int, provider: str, seconds: float = 3.0) -> float:
    """Images per second of the bare model (fp32 input, no uint8 prefix, no score reduction) with its
    input and output already in device memory: the ceiling the issue's figures are quoted against."""
    import onnxruntime as ort

    on_gpu = provider != "CPUExecutionProvider"
    session = ort.InferenceSession(str(model), providers=[provider, "CPUExecutionProvider"])
    where = "cuda" if on_gpu else "cpu"
    x = np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32)
    feed = ort.OrtValue.ortvalue_from_numpy(x, where, 0)
    binding = session.io_binding()
    binding.bind_ortvalue_input(session.get_inputs()[0].name, feed)
    binding.bind_output(session.get_outputs()[0].name, where, 0)
    session.run_with_iobinding(binding)  # warm: kernel choice for this shape
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        session.run_with_iobinding(binding)
        n += batch
    return n / (time.perf_counter() - started)


def bench_model(explicit: Path | None) -> Path:
    """The detector to time: ``--model``, else ``CONTENTFN_DETECTOR_MODEL_PATH``, else the nudenet wheel's."""
    env = os.environ.get("CONTENTFN_DETECTOR_MODEL_PATH")
    found = explicit or (Path(env) if env else default_model_path())
    if found is None:
        raise SystemExit("no detector model: pass --model or install the nudenet wheel")
    return found


def main() -> int:
    args = parse_args()
    began = time.perf_counter()
    # As the GPU service process does (python -m infra.gpu_worker): a one-process configuration runs
    # its pipeline in this process.
    keep_freed_memory(load_settings().gpu_malloc_keep_mib)
    width, height = (int(v) for v in args.photo.lower().split("x"))
    model = bench_model(args.model)
    providers = [p for p in args.providers.split(",") if p]
    options = json.loads(args.provider_options) if args.provider_options else {}
    detector = Detector(
        ModelSpec(path=model, input_size=args.size, precision=args.precision),
        providers=providers,
        pinned=not args.pageable,
        provider_options=options,
    )
    device = device_name(detector)
    n = args.images or (8192 if detector.on_gpu else 128)
    n_naive = min(n, args.naive_images or (1024 if detector.on_gpu else 32))
    batches = [int(b) for b in args.batches.split(",")]
    counts = [int(p) or default_processes(detector.on_gpu) for p in args.processes.split(",")]
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.device_process]
    device_calls = [int(c) for c in args.device_calls.split(",")]
    # (batch, processes, device calls at once; 0 = no device process)
    configs = [(b, p, c) for p in counts for d in modes for c in (device_calls if d else [0]) for b in batches]
    console.print(
        f"detector {detector.name}: {detector.provider}, {args.precision}, input {detector.input_size}, uint8 input "
        f"{not detector.host_normalise}; {n} images of {width}x{height} per run; device {device}; "
        f"pipeline processes {counts}, device process {args.device_process}, "
        f"{'pageable' if args.pageable or not detector.on_gpu else 'page-locked'} batch buffers"
        + (f"; provider options {options}" if options else "")
    )
    results: dict[tuple[int, int, int], tuple[float, float, int]] = {}
    with temp_workdir("contentfn-bench-gpu-") as work, BenchDatabase(work) as bench:
        # Distinct content for a few hundred objects, repeated under more keys: decoding costs the
        # same, and generating thousands of distinct photos would take longer than the benchmark.
        jpegs = photos(min(n, 256), width, height, photo_dir=args.photo_dir)
        bucket = work / "buckets" / BUCKET
        bucket.mkdir(parents=True)
        keys = []
        for i in range(n):
            data = jpegs[i % len(jpegs)]
            keys.append(f"images/{i:06d}.jpg")
            (bucket / keys[-1]).parent.mkdir(parents=True, exist_ok=True)
            (bucket / keys[-1]).write_bytes(data)
        console.print(f"{n} JPEGs ({len(jpegs)} distinct), {sum(map(len, jpegs)) / len(jpegs) / 1024:.0f} KiB average")
        per_core = host_prepare_rate(detector, jpegs)
        console.print(
            f"host side: safe decode + letterbox {per_core:.0f} img/s on one core, {cpu_count()} cores "
            f"(the CPU ceiling of the end-to-end figure is below {per_core * cpu_count():.0f} img/s)"
        )

        def services(label: str, batch: int, processes: int = 1, device_calls: int = 0) -> Services:
            settings = bench_settings(
                work,
                bench.fresh(label),
                bucket=BUCKET,
                gpu_max_batch=batch,
                gpu_max_in_flight=args.in_flight or max(4, 2 * processes),
                gpu_processes=processes,
                gpu_pinned_buffers=not args.pageable,
                gpu_device_process=device_calls > 0,
                gpu_device_calls=max(1, device_calls),
                **({"gpu_infer_threads": args.infer_threads} if args.infer_threads else {}),
                detector_model_path=model,
                detector_input_size=args.size,
                detector_providers=tuple(providers),
                detector_provider_options=options,
                detector_precision=args.precision,
                gpu_max_wait_ms=args.max_wait_ms,
                gpu_decode_threads=args.decode_threads,
                queue_visibility_s=600.0,
                gpu_item_deadline_s=500.0,
                worker_poll_s=0.01,
                db_pool_max=16,
            )
            return Services.from_settings(settings)

        svc = services("naive", 1)
        try:
            seed_jobs(svc, keys[:n_naive], "naive")
            detector.detect([decode_image(jpegs[0], max_bytes=1 << 26, max_pixels=1 << 28)])  # warm
            naive = n_naive / run_naive(svc, detector, n_naive)
            check_rows(svc, n_naive)
        finally:
            svc.close()
        console.print(f"naive loop: {naive:.1f} img/s over {n_naive} images")
        ceilings = {b: model_only(detector, b, seconds=2.0 if detector.on_gpu else 1.0) for b in batches}
        for b in batches:
            try:
                resident = resident_ceiling(
                    model, b, args.size, detector.provider, seconds=2.0 if detector.on_gpu else 1.0
                )
            except Exception as exc:  # a figure for the report, not a condition of the run
                console.print(f"model alone, input already on the device, batch {b}: not measured ({exc})")
                continue
            console.print(
                f"model alone, batch {b}: {resident:.1f} img/s with fp32 input already on the device, "
                f"{ceilings[b]:.1f} img/s from a host uint8 batch"
            )
        longest = 0.0  # seconds the longest configuration took, set-up included: the guess for the next
        failed: list[str] = []
        for k, (b, procs, calls) in enumerate(configs):
            if args.budget_s and time.perf_counter() - began + longest > args.budget_s:
                left = ", ".join(f"b{b2}/p{p2}/d{c2}" for b2, p2, c2 in configs[k:])
                console.print(f"budget of {args.budget_s:.0f} s: not starting {len(configs) - k} more ({left})")
                break
            config_began = time.perf_counter()
            label = f"b{b}p{procs}d{calls}"
            svc = services(label, b, procs, calls)
            try:
                seed_jobs(svc, keys, label)
                elapsed, stages, usage, host = run_worker(svc, detector, n, procs)
                _, dets = check_rows(svc, n)
            except (Exception, SystemExit) as exc:  # one configuration failing keeps the others' figures
                failed.append(f"b{b}/p{procs}/d{calls}: {type(exc).__name__}: {exc}")
                console.print(f"batch {b}, {procs} processes, device calls {calls}: FAILED: {failed[-1]}")
                continue
            finally:
                svc.close()
            results[(b, procs, calls)] = (n / elapsed, ceilings[b], dets)
            longest = max(longest, time.perf_counter() - config_began)
            console.print(
                f"batch {b:>4}, {procs} processes{f', device process ({calls} at once)' if calls else ''}: "
                f"end-to-end {n / elapsed:8.1f} img/s; model only {ceilings[b]:8.1f} img/s; {dets} detections"
            )
            console.print(stage_line(stages, n))
            console.print(host)
            if usage is not None and usage["calls"]:
                console.print(
                    f"device process: {usage['calls']} calls, {1000 * usage['busy_s'] / usage['calls']:.1f} ms "
                    f"busy per call, busy {100 * usage['busy_s'] / elapsed:.0f}% of the run, "
                    f"{usage['images'] / usage['busy_s']:.0f} img/s while busy, at most {usage['peak_running']} at once, "
                    f"{usage['shape_changes']} calls of another batch size than the call before; "
                    f"{usage['pinned_blocks']} of {usage['blocks']} shared buffers page-locked"
                )
    print(f"{'batch':>6} {'procs':>6} {'device':>7} {'e2e img/s':>10} {'model img/s':>12} {'e2e/model':>10}")
    for (b, procs, calls), (e2e, ceiling, _) in results.items():
        dev = f"{calls} call" if calls else "no"
        print(f"{b:>6} {procs:>6} {dev:>7} {e2e:>10.1f} {ceiling:>12.1f} {e2e / ceiling:>10.2f}")
    for line in failed:
        print(f"failed: {line}")
    if not results:
        print("bench-gpu: no configuration finished" + (" within the budget" if not failed else ""))
        return 1
    best_b, best_p, best_d = max(results, key=lambda k: results[k][0])
    best = results[(best_b, best_p, best_d)][0]
    print(f"naive one-at-a-time loop: {naive:.1f} img/s")
    print(
        f"bench-gpu device={device} best_img_per_s={best:.1f} naive_img_per_s={naive:.1f} "
        f"ratio={best / naive:.2f} best_batch={best_b} processes={best_p} device_process={best_d or 'no'} precision={args.precision}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
