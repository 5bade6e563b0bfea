"""Helpers shared by the benchmarks: a throw-away database, settings, the data set, stats, output.

The benchmarks run as plain modules (``python -m tests.bench.bench_*``), never under pytest, so
everything a fixture would give a test is built here instead, with the same care for cleanup: a
benchmark that leaves a PostgreSQL server or a database behind poisons the next run's numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from shared.config import Settings, load_settings
from shared.observability.traces import configure_tracing
from shared.services import Services

if TYPE_CHECKING:
    from tests.bench.bench_search import Setup

__all__ = [
    "BENCH_DIR",
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "REPO",
    "BenchDatabase",
    "Timer",
    "base_parser",
    "bench_settings",
    "catalogue",
    "console",
    "copy_embeddings",
    "embed_in_batches",
    "fmt_float",
    "model_dir",
    "percentile",
    "progress",
    "require_model",
    "vector_cache_path",
]

REPO = Path(__file__).resolve().parents[2]
# Generated artefacts worth keeping between runs (embedded vectors): beside the model, ignored by git.
BENCH_DIR = REPO / ".contentfn" / "bench"
DEFAULT_ROWS = 57_718
DEFAULT_SEED = 7

# Progress and chatter go to stderr so stdout holds only the summary and the final machine-readable line.
console = Console(stderr=True)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"tracks to generate (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data generator seed")
    return parser


def model_dir() -> Path:
    """The exported model: ``CONTENTFN_MODEL_DIR`` or the repo's ``make model`` output.

    Resolved against the repository, not the benchmark's temporary data dir, which has no model.
    """
    configured = os.environ.get("CONTENTFN_MODEL_DIR")
    return Path(configured) if configured else REPO / ".contentfn" / "models" / "all-MiniLM-L6-v2"


def require_model() -> Path:
    path = model_dir()
    if not (path / "manifest.json").is_file():
        raise SystemExit(f"model files missing under {path}: run `make model` first")
    return path


def bench_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for one benchmark phase: its own data dir and database, the real model.

    ``CONTENTFN_OTEL_EXPORTER_ENDPOINT`` (and ``_SAMPLE_RATIO``) turn span export on for the whole
    phase, as a deployed process would run, so its cost shows in the figures.
    """
    # The per-key request quota stays on (its accounting is part of every request's cost) but high
    # enough that a benchmark's own traffic is never refused.
    overrides.setdefault("api_requests_per_minute", 1_000_000)
    settings = load_settings(data_dir=data_dir, database_url=database_url, model_dir=model_dir(), **overrides)
    configure_tracing("contentfn-bench", settings.otel_exporter_endpoint, sample_ratio=settings.otel_sample_ratio)
    return settings


def _with_db(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


@dataclass
class BenchDatabase:
    """A PostgreSQL server to benchmark on, and fresh databases on it, all removed on exit.

    With ``CONTENTFN_DATABASE_URL`` set, databases are created on that server (the role needs
    CREATEDB) and dropped afterwards; otherwise an embedded pgserver runs in a temporary folder.
    Fresh databases per phase keep one phase's rows, dead tuples and indexes out of another's timings.
    """

    workdir: Path
    server_url: str = ""
    _server: Any = None
    _created: list[str] = field(default_factory=list)

    def __enter__(self) -> BenchDatabase:
        external = os.environ.get("CONTENTFN_DATABASE_URL")
        if external:
            self.server_url = external
        else:
            import pgserver

            self._server = pgserver.get_server(self.workdir / "pgdata", cleanup_mode="stop")
            self.server_url = str(self._server.get_uri())
        return self

    @property
    def external(self) -> bool:
        return self._server is None

    def fresh(self, label: str) -> str:
        """Create an empty database and return its URL (migrations are applied by Services)."""
        name = f"contentfn_bench_{label}_{os.getpid()}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return _with_db(self.server_url, name)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                for name in self._created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error as err:
            console.print(f"[yellow]could not drop benchmark databases: {err}[/yellow]")
        finally:
            if self._server is not None:
                self._server.cleanup()


@contextlib.contextmanager
def catalogue(
    pg: BenchDatabase, data_dir: Path, label: str, rows: int, seed: int, **overrides: Any
) -> Iterator[tuple[Services, Setup]]:
    """bench-search's catalogue (:func:`tests.bench.bench_search.prepare`) of ``rows`` tracks in a
    fresh database ``label`` on ``pg``: its services, on :func:`bench_settings` with ``overrides``,
    and the setup's figures. The services close on exit."""
    from tests.bench.bench_search import prepare  # bench_search builds on this module

    url = pg.fresh(label)
    services = Services.from_settings(bench_settings(data_dir, url, **overrides))
    try:
        yield services, prepare(services, rows, seed, url)
    finally:
        services.close()


@contextlib.contextmanager
def temp_workdir(prefix: str) -> Iterator[Path]:
    """A temporary folder for the embedded server, buckets and generated files."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


class Timer:
    """``with Timer() as t: ...`` then ``t.s``: wall-clock seconds of the block."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.s = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.perf_counter() - self.start


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 to 100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def fmt_float(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def embed_in_batches(embedder: Any, texts: Sequence[str], batch_size: int, label: str = "embedding") -> np.ndarray:
    """``embedder.embed`` over ``texts`` in slices of ``batch_size``, with a progress bar.

    Slicing here (rather than one big call) mirrors what the embed worker sees: one claimed batch
    per call, so length-bucketing can only sort within a batch, not across the whole corpus.
    """
    out = np.empty((len(texts), int(embedder.dims)), dtype=np.float32)
    with progress() as bar:
        task = bar.add_task(label, total=len(texts))
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            out[start : start + len(chunk)] = embedder.embed(chunk)
            bar.advance(task, len(chunk))
    return out


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def vector_cache_path(rows: int, seed: int, model_key: str) -> Path:
    """Where the embedded vectors of one generated data set are kept between runs."""
    return BENCH_DIR / f"vectors-r{rows}-s{seed}-{_safe(model_key)}.npy"


def copy_embeddings(
    conn: psycopg.Connection[Any], model_key: str, track_ids: Sequence[int], hashes: Sequence[str], vectors: np.ndarray
) -> None:
    """Binary COPY of vectors into ``embeddings``: the fastest load path pgvector offers.

    The connection must have the pgvector types registered (pooled connections do).
    Does not commit.
    """
    with (
        conn.cursor() as cur,
        cur.copy("COPY embeddings (track_id, model, embedding, content_hash) FROM STDIN WITH (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["int8", "text", "vector", "text"])
        for tid, chash, vec in zip(track_ids, hashes, vectors, strict=True):
            copy.write_row((tid, model_key, vec, chash))
