"""Ingest benchmark: bulk upsert rows/s, bare embedding kernel texts/s, and upload→searchable tracks/s.

Run with ``make bench-ingest`` (``python -m tests.bench.bench_ingest [--rows N]``), never under pytest.

Each phase on its own fresh database so one phase's rows and indexes do not slow another:

* upsert: ``upsert_tracks`` over rows already parsed and validated (COPY into a staging table, one
  INSERT … ON CONFLICT, commit): the store's bulk write.
* ingest: the generated file through the real ingest function (``handle_object_created``):
  stream-parse, validate, bulk upsert, an embed and an enrich job per row, ledger, commit. Timed
  from ``blob.put`` to the committed report.
* kernel: ``embedder.embed`` alone over a random sample of the same texts, in slices of
  ``embed_batch_size`` exactly as the worker claims them: the ceiling the pipeline can reach.
* pipeline: the local runtime's bucket watcher, embed worker and index keeper (no API) pick the
  uploaded file up; timed from ``blob.put`` until every track has a vector for the model and the
  model's HNSW index is valid (built after the bulk backlog, see ``functions.embed.index``).

The pipeline is instrumented (time inside ``embed``, inside ``claim``, and the rest of each batch)
so a shortfall against the kernel can be attributed instead of guessed. A full run also leaves the
vectors in the benchmark cache, which ``bench_search`` then loads instead of embedding again.

Target: upsert >= 20,000 rows/s; pipeline >= 0.8 x kernel. ``--upsert-only`` skips the embedding phases.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from functions.ingest.core import handle_object_created
from functions.ingest.parsing import ParsedRow, iter_rows
from functions.ingest.reports import FileReport
from local.datagen import generate_tracks, write_tracks
from local.runtime import LocalStack
from shared.embedder import load_embedder
from shared.events import ObjectCreated
from shared.services import Services
from shared.store.db import Database
from shared.store.tracks import TrackStore, embedding_text, upsert_tracks
from tests.bench._common import (
    BenchDatabase,
    Timer,
    base_parser,
    bench_settings,
    console,
    embed_in_batches,
    progress,
    require_model,
    temp_workdir,
    vector_cache_path,
)

UPSERT_TARGET_ROWS_S = 20_000.0
PIPELINE_TARGET_RATIO = 0.8
DEFAULT_KERNEL_SAMPLE = 3_000


@dataclass
class UpsertResult:
    rows: int
    seconds: float
    report: FileReport | dict[str, int]  # the bare upsert has counts only

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


@dataclass
class KernelResult:
    texts: int
    seconds: float
    batch_size: int

    @property
    def tps(self) -> float:
        return self.texts / self.seconds


@dataclass
class PipelineResult:
    rows: int
    seconds: float
    ingest_s: float
    first_vector_s: float
    vectors_s: float
    embed_s: float
    embedded_texts: int
    claim_s: float
    batches: int

    @property
    def tps(self) -> float:
        return self.rows / self.seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "ingest benchmark")
    parser.add_argument(
        "--kernel-sample",
        type=int,
        default=DEFAULT_KERNEL_SAMPLE,
        help=f"texts embedded for the kernel figure (random sample; default {DEFAULT_KERNEL_SAMPLE}, 0: all)",
    )
    parser.add_argument("--timeout", type=float, default=4 * 3600.0, help="give up on the pipeline after this many s")
    parser.add_argument(
        "--upsert-only", action="store_true", help="measure the bulk upsert and the ingest function, skip embedding"
    )
    args = parser.parse_args(argv)
    require_model()
    rows, seed = args.rows, args.seed

    with temp_workdir("contentfn-bench-ingest-") as work, BenchDatabase(work) as pg:
        data_file = work / "tracks.jsonl"
        written = write_tracks(data_file, rows, seed=seed, fmt="jsonl")
        assert written.good == rows, written
        console.print(
            f"generated {rows:,} tracks (seed {seed}), {data_file.stat().st_size / 1e6:.1f} MB of jsonl; "
            f"database: {'external server' if pg.external else 'embedded pgserver'}"
        )

        bulk = bench_bulk_upsert(pg.fresh("bulk"), data_file, rows)
        console.print(f"bulk upsert: {bulk.rows:,} rows in {bulk.seconds:.2f} s = {bulk.rows_per_s:,.0f} rows/s")
        upsert = bench_upsert(work / "upsert", pg.fresh("upsert"), data_file, rows)
        console.print(
            f"ingest function: {upsert.rows:,} rows in {upsert.seconds:.2f} s = {upsert.rows_per_s:,.0f} rows/s"
        )
        if args.upsert_only:
            print(
                f"bench-ingest rows={rows} upsert_rows_per_s={bulk.rows_per_s:.1f} "
                f"ingest_rows_per_s={upsert.rows_per_s:.1f} pipeline_tps=skipped embed_kernel_tps=skipped"
            )
            return 0

        texts = [embedding_text(t["title"], t["lyrics"]) for t in generate_tracks(rows, seed)]
        # The kernel sample is measured in two halves, one before and one after the pipeline, so that
        # load from other work on the machine weighs on both figures alike instead of on one of them.
        kernel = KernelBench(work / "kernel", pg.server_url, texts, args.kernel_sample, seed)
        kernel.run_half(0)
        pipeline = bench_pipeline(work / "pipeline", pg.fresh("pipeline"), data_file, rows, seed, args.timeout)
        kernel.run_half(1)
        console.print(
            f"kernel: {kernel.result.texts:,} texts in {kernel.result.seconds:.1f} s = {kernel.result.tps:.1f} texts/s "
            f"(halves: {kernel.half_tps[0]:.1f} before, {kernel.half_tps[1]:.1f} after the pipeline)"
        )

    report(rows, seed, bulk, upsert, kernel, pipeline)
    return 0


def report(
    rows: int, seed: int, bulk: UpsertResult, upsert: UpsertResult, kernel_bench: KernelBench, pipeline: PipelineResult
) -> None:
    kernel = kernel_bench.result
    ratio = pipeline.tps / kernel.tps
    other_s = pipeline.seconds - pipeline.ingest_s - pipeline.embed_s - pipeline.claim_s
    pipeline_kernel_tps = pipeline.embedded_texts / pipeline.embed_s if pipeline.embed_s else float("nan")
    lines = [
        f"ingest benchmark: {rows:,} synthetic tracks (seed {seed}), 384-d model, embed_batch_size {kernel.batch_size}",
        f"  upsert    {bulk.rows_per_s:>10,.0f} rows/s   (bulk upsert of validated rows: COPY + INSERT … ON CONFLICT, "
        f"{bulk.seconds:.2f} s)  target >= {UPSERT_TARGET_ROWS_S:,.0f}: {_verdict(bulk.rows_per_s >= UPSERT_TARGET_ROWS_S)}",
        f"  ingest    {upsert.rows_per_s:>10,.0f} rows/s   (the whole function: parse, validate, upsert, 2 jobs per row, "
        f"ledger; upload→commit {upsert.seconds:.2f} s)",
        f"  kernel    {kernel.tps:>10.1f} texts/s  (embedder.embed alone, {kernel.texts:,}-text random sample"
        f"{' = all' if kernel.texts == rows else ''}, no database; halves before/after the pipeline "
        f"{kernel_bench.half_tps[0]:.1f} / {kernel_bench.half_tps[1]:.1f})",
        f"  pipeline  {pipeline.tps:>10.1f} tracks/s (upload→every track embedded and the HNSW index valid: "
        f"{pipeline.seconds:.1f} s)  = {ratio:.2f} x kernel, target >= {PIPELINE_TARGET_RATIO}: "
        f"{_verdict(ratio >= PIPELINE_TARGET_RATIO)}",
        f"    where the pipeline's time went: ingest (upload→commit, no embedding possible) {pipeline.ingest_s:.1f} s, "
        f"first vector after {pipeline.first_vector_s:.1f} s, every vector after {pipeline.vectors_s:.1f} s "
        f"(exact-scan search until the index is valid, {pipeline.seconds - pipeline.vectors_s:.1f} s later);",
        f"    inside embed() {pipeline.embed_s:.1f} s = {pipeline.embed_s / pipeline.seconds:.0%} of the wall time "
        f"({pipeline_kernel_tps:.1f} texts/s while embedding), "
        f"claim {pipeline.claim_s:.1f} s over {pipeline.batches:,} batches, "
        f"rest (reads, vector writes, the deferred HNSW build, ledger, ack, idle polls) {other_s:.1f} s",
    ]
    print("\n".join(lines))
    print(
        f"bench-ingest rows={rows} upsert_rows_per_s={bulk.rows_per_s:.1f} ingest_rows_per_s={upsert.rows_per_s:.1f} "
        f"pipeline_tps={pipeline.tps:.2f} "
        f"embed_kernel_tps={kernel.tps:.2f} pipeline_vs_kernel={ratio:.3f}"
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# -- (a) the bulk upsert alone, and the whole ingest function --------------------------------------


def bench_bulk_upsert(database_url: str, data_file: Path, rows: int) -> UpsertResult:
    """``upsert_tracks`` over rows already parsed and validated: the store's bulk write, one transaction."""
    with data_file.open("rb") as stream:
        tracks = [r.track for r in iter_rows(stream, "jsonl", max_field_bytes=1 << 20) if isinstance(r, ParsedRow)]
    if len(tracks) != rows:
        raise SystemExit(f"expected {rows} valid rows, parsed {len(tracks)}")
    db = Database(database_url)
    db.migrate()
    db.open()
    try:
        with db.connection() as conn, Timer() as timer:
            result = upsert_tracks(conn, tracks)
            conn.commit()
        if result.inserted != rows:
            raise SystemExit(f"expected {rows} inserted tracks, got {result.inserted}")
        return UpsertResult(rows=rows, seconds=timer.s, report={"inserted": result.inserted})
    finally:
        db.close()


def bench_upsert(data_dir: Path, database_url: str, data_file: Path, rows: int) -> UpsertResult:
    settings = bench_settings(data_dir, database_url, max_upload_bytes=max(data_file.stat().st_size + 1, 1 << 20))
    services = Services.from_settings(settings)
    try:
        payload = data_file.read_bytes()  # read before the clock: disk speed is not the subject
        with Timer() as timer:
            info = services.blob.put(settings.bucket, data_file.name, payload)
            event = ObjectCreated(bucket=info.bucket, key=info.key, size=info.size, generation=info.generation)
            report = handle_object_created(event, services).result
        if not isinstance(report, FileReport) or report.status != "ok" or report.rows_ok != rows:
            raise SystemExit(f"ingest did not accept every row: {report}")
        with services.db.connection() as conn:
            counted = conn.execute("SELECT count(*) FROM tracks").fetchone()
            conn.commit()
        if counted is None or counted[0] != rows:
            raise SystemExit(f"expected {rows} committed tracks, found {counted}")
        return UpsertResult(rows=report.rows_ok, seconds=timer.s, report=report)
    finally:
        services.close()


# -- (b) the bare embedding kernel ------------------------------------------------------------------


class KernelBench:
    """``embedder.embed`` alone over a random sample of the texts, in slices of ``embed_batch_size``."""

    def __init__(self, data_dir: Path, server_url: str, texts: Sequence[str], sample: int, seed: int) -> None:
        self.settings = bench_settings(data_dir, server_url)
        self.embedder = load_embedder(self.settings)
        n = len(texts) if sample <= 0 or sample >= len(texts) else sample
        chosen = list(texts) if n == len(texts) else random.Random(seed).sample(list(texts), n)
        self.halves = [chosen[: n // 2], chosen[n // 2 :]]
        self.seconds = [0.0, 0.0]
        self.embedder.embed(chosen[: self.settings.embed_batch_size])  # warm-up: first-call allocations

    def run_half(self, half: int) -> None:
        with Timer() as timer:
            embed_in_batches(self.embedder, self.halves[half], self.settings.embed_batch_size, f"kernel {half + 1}/2")
        self.seconds[half] = timer.s

    @property
    def half_tps(self) -> list[float]:
        return [len(h) / s if s else float("nan") for h, s in zip(self.halves, self.seconds, strict=True)]

    @property
    def result(self) -> KernelResult:
        return KernelResult(
            texts=sum(len(h) for h in self.halves),
            seconds=sum(self.seconds),
            batch_size=self.settings.embed_batch_size,
        )


# -- (c) upload → searchable through the local runtime ---------------------------------------------


class _TimedEmbedder:
    """Wraps the worker's embedder to add up the time spent inside ``embed`` (thread-safe)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.texts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self._inner.embed(texts)  # type: ignore[no-any-return]
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started
                self.texts += len(texts)


class _TimedClaim:
    """Wraps ``queue.claim`` on one queue instance to add up claim time and non-empty batches."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds = 0.0
        self.batches = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        claimed = self._inner(*args, **kwargs)
        if claimed:
            self.seconds += time.perf_counter() - started
            self.batches += 1
        return claimed


def bench_pipeline(
    data_dir: Path, database_url: str, data_file: Path, rows: int, seed: int, timeout_s: float
) -> PipelineResult:
    settings = bench_settings(data_dir, database_url, max_upload_bytes=max(data_file.stat().st_size + 1, 1 << 20))
    stack = LocalStack(settings, serve_api=False).start()  # loads the model before the clock starts
    try:
        services = stack.services
        assert services is not None
        model_key = services.embedder.model_key
        timed = _TimedEmbedder(services.embedder)
        services._embedder = timed  # type: ignore[assignment]  # instrumentation only
        claim = _TimedClaim(services.queue.claim)
        services.queue.claim = claim  # type: ignore[method-assign]
        payload = data_file.read_bytes()
        with psycopg.connect(database_url, autocommit=True) as probe:
            started = time.perf_counter()
            services.blob.put(settings.bucket, data_file.name, payload)
            ingest_s, first_vector_s, vectors_s, done_s = _watch(probe, timed, model_key, rows, started, timeout_s)
        _check_no_dead_jobs(database_url)
        if stack.watcher is not None:
            stack.watcher.stop()
        if stack.embed_worker is not None:
            stack.embed_worker.stop()
        with psycopg.connect(database_url) as conn:
            _save_vectors(conn, rows, seed, model_key)
        return PipelineResult(
            rows=rows,
            seconds=done_s,
            ingest_s=ingest_s,
            first_vector_s=first_vector_s,
            vectors_s=vectors_s,
            embed_s=timed.seconds,
            embedded_texts=timed.texts,
            claim_s=claim.seconds,
            batches=claim.batches,
        )
    finally:
        stack.stop()


def _watch(
    conn: psycopg.Connection[Any], timed: _TimedEmbedder, model_key: str, rows: int, started: float, timeout_s: float
) -> tuple[float, float, float, float]:
    """Wait until every track has a vector and the HNSW index is valid.

    Returns (ingest committed, first vector, every vector committed, index valid) in s since start.
    "Searchable" is taken strictly: search has its HNSW index back, not only an exact scan.
    Progress comes from the instrumented embedder, in process: counting ``embeddings`` rows every
    fraction of a second would scan a growing table on the same two cores and slow the run it
    measures. The database is asked only to see the ingest commit (a tiny ledger lookup) and, once
    the worker has embedded ``rows`` texts, to confirm that every vector is committed.
    """
    ingest_s = first_s = vectors_s = float("nan")
    with progress() as bar:
        task = bar.add_task("pipeline", total=rows)
        while True:
            now = time.perf_counter() - started
            if now > timeout_s:
                raise SystemExit(f"pipeline timed out after {now:.0f} s with {timed.texts} of {rows} texts embedded")
            if ingest_s != ingest_s:  # NaN: the file is not committed yet
                if conn.execute("SELECT 1 FROM ledger WHERE stage = 'ingested' LIMIT 1").fetchone():
                    ingest_s = now
                time.sleep(0.02)
                continue
            if timed.texts and first_s != first_s:
                first_s = now
            bar.update(task, completed=min(timed.texts, rows))
            if timed.texts < rows:
                time.sleep(0.1)
                continue
            if vectors_s != vectors_s:
                row = conn.execute("SELECT count(*) FROM embeddings WHERE model = %s", (model_key,)).fetchone()
                if row and row[0] >= rows:
                    vectors_s = time.perf_counter() - started
            if vectors_s == vectors_s and TrackStore(conn).hnsw_index_state(model_key) == "valid":
                return ingest_s, first_s, vectors_s, time.perf_counter() - started
            time.sleep(0.05)


def _check_no_dead_jobs(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM dead_jobs").fetchone()
    if row and row[0]:
        raise SystemExit(f"{row[0]} jobs were dead-lettered during the pipeline run")


def _save_vectors(conn: psycopg.Connection[Any], rows: int, seed: int, model_key: str) -> None:
    """Keep the pipeline's vectors (in generation order) for ``bench_search``, unless already cached."""
    path = vector_cache_path(rows, seed, model_key)
    if path.exists():
        return
    from pgvector.psycopg import register_vector

    register_vector(conn)
    got = conn.execute(
        "SELECT t.source_id, e.embedding FROM embeddings e JOIN tracks t ON t.id = e.track_id WHERE e.model = %s",
        (model_key,),
    ).fetchall()
    order = {str(track["id"]): index for index, track in enumerate(generate_tracks(rows, seed))}
    if len(got) != rows or len(order) != rows:
        return
    vectors: np.ndarray | None = None
    seen = np.zeros(rows, dtype=bool)
    for source_id, vec in got:
        index = order.get(str(source_id))
        if index is None:
            return
        array = vec.to_numpy() if hasattr(vec, "to_numpy") else np.asarray(vec, dtype=np.float32)
        if vectors is None:
            vectors = np.empty((rows, len(array)), dtype=np.float32)
        vectors[index] = array
        seen[index] = True
    if vectors is None or not seen.all():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    console.print(f"saved the pipeline's vectors for bench_search: {path.name}")


if __name__ == "__main__":
    sys.exit(main())
