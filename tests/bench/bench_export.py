"""Export benchmark: peak memory and rows/s of ``contentfn export`` over a whole catalogue with profiles.

Run with ``python -m tests.bench.bench_export [--rows N] [--format parquet]``, never under pytest.

The generated catalogue is ingested through the real ingest function; each track then gets its
lyric features and rule-based profile computed by the real analyzers (written with COPY rather than
through the queue, which would only add hours of job handling to a benchmark of the read side).
The export runs as the CLI in a child process, so its peak resident memory (``ru_maxrss`` of the
child) is the export's alone, interpreter and libraries included.

Target: peak memory under 300 MB at 57,718 tracks to Parquet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from functions.ingest.core import handle_object_created
from local.datagen import write_tracks
from shared.events import ObjectCreated
from shared.intel.features import FEATURES_VERSION, compute_features
from shared.intel.rules import RULES_VERSION, analyze_rules
from shared.services import Services
from tests.bench._common import BenchDatabase, Timer, base_parser, bench_settings, console, temp_workdir

PEAK_TARGET_MB = 300.0


def _profile_all(conn: psycopg.Connection[Any], batch: int = 2000) -> int:
    """Features and a rule-based profile for every track, as enrich and analyze compute them."""
    done = 0
    with conn.cursor(name="tracks") as read, conn.cursor() as write:
        read.execute("SELECT id, lyrics, content_hash FROM tracks ORDER BY id")
        while rows := read.fetchmany(batch):
            features: list[tuple[Any, ...]] = []
            analyses: list[tuple[Any, ...]] = []
            for track_id, lyrics, chash in rows:
                f = compute_features(lyrics)
                a = analyze_rules(lyrics, f, chash)
                features.append((track_id, "features", FEATURES_VERSION, chash, Jsonb(f.as_dict())))
                analyses.append(
                    (track_id, a.analyzer, a.prompt_version, chash, Jsonb(a.model_dump(mode="json")), a.confidence)
                )
            with write.copy("COPY enrichments (track_id, kind, version, content_hash, data) FROM STDIN") as copy:
                for row in features:
                    copy.write_row(row)
            with write.copy(
                "COPY analyses (track_id, analyzer, prompt_version, content_hash, result, confidence) FROM STDIN"
            ) as copy:
                for row in analyses:
                    copy.write_row(row)
            done += len(rows)
    return done


def main() -> int:
    parser = base_parser("Export peak memory")
    parser.add_argument("--format", dest="fmt", choices=["csv", "jsonl", "parquet"], default="parquet")
    args = parser.parse_args()
    with temp_workdir("contentfn-bench-export-") as work, BenchDatabase(work) as server:
        url = server.fresh("export")
        settings = bench_settings(work / "state", url)
        services = Services.from_settings(settings)
        try:
            path = work / "tracks.jsonl"
            write_tracks(path, args.rows, seed=args.seed)
            info = services.blob.put(settings.bucket, "bench.jsonl", path.read_bytes())
            with Timer() as t_ingest:
                report = handle_object_created(
                    ObjectCreated(bucket=info.bucket, key=info.key, generation=info.generation), services
                )
            console.print(f"ingested {report['rows_ok']:,} tracks in {t_ingest.s:.1f} s")
            with Timer() as t_profile, services.db.connection() as conn:
                n = _profile_all(conn)
                conn.commit()
            console.print(f"profiled {n:,} tracks (rules {RULES_VERSION}) in {t_profile.s:.1f} s")
        finally:
            services.close()
        out = work / f"export.{args.fmt}"
        env = {**os.environ, "CONTENTFN_DATABASE_URL": url, "CONTENTFN_DATA_DIR": str(work / "cli")}
        cmd = [sys.executable, "-m", "local.cli", "export", "--format", args.fmt, "--out", str(out)]
        started = time.perf_counter()
        log = work / "export.log"
        with log.open("w") as sink:
            proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
            # wait4: the resource usage of this child alone (not of the database's helper processes)
            _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        output = log.read_text()
        if os.waitstatus_to_exitcode(status) != 0:
            console.print(output)
            return 1
        peak_mb = usage.ru_maxrss / 1024  # KiB on Linux
        size_mb = Path(out).stat().st_size / 2**20
        ok = peak_mb < PEAK_TARGET_MB
        console.print(output.strip())
        console.print(
            f"export rows={n} format={args.fmt} seconds={seconds:.1f} rows_per_s={n / seconds:,.0f}"
            f" file_mb={size_mb:.1f} peak_rss_mb={peak_mb:.0f} target_mb={PEAK_TARGET_MB:.0f}"
            f" {'ok' if ok else 'OVER'}"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
