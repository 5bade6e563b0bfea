"""The chaos run: the local stack as one process per role over real services, under scheduled faults.

Tracks, images and file streams go in while a seeded schedule SIGKILLs each kind of worker,
restarts PostgreSQL with ``pg_ctl restart -m immediate``, kills Redis, takes the LLM server down,
makes it hang and answer 429, fills the bucket's disk, and two workers run with skewed clocks.
Each fault is followed by a restart of what it broke (as a supervisor would) and a wait until the
pipeline makes progress again. When all is quiet, :mod:`tests.chaos.checks` counts every effect.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from local.datagen import generate_tracks
from shared.blob import LocalBlob
from shared.store.db import Database
from tests.chaos.checks import Expected, Verdict, check
from tests.chaos.services import (
    REPO,
    BucketMount,
    LlmControl,
    Postgres,
    Redis,
    RoleProcs,
    RoleSpec,
    env_for,
    free_port,
    query,
)
from tests.vision_fixtures import distinct_jpegs, tiny_model

__all__ = ["FAULT_KINDS", "ChaosConfig", "ChaosResult", "run_chaos"]

log = logging.getLogger("chaos")

KILLED_ROLES = ("api", "watcher", "embed", "index", "enrich", "analyze", "detect", "streams")
FAULT_KINDS = (
    *(f"kill:{r}" for r in KILLED_ROLES),
    "pg_restart",
    "redis_restart",
    "llm_down",
    "llm_hang",
    "llm_429",
    "disk_full",
)
BUCKET = "chaos"
STREAM_FPS = 10


@dataclass
class ChaosConfig:
    tracks: int = 300
    images: int = 10
    seed: int = 0
    rounds: int = 1  # times each fault kind is injected
    hold_s: tuple[float, float] = (1.0, 3.0)  # how long a fault lasts
    gap_s: tuple[float, float] = (0.5, 1.5)  # between the recovery from one fault and the next
    stream_frames: int = 120
    quiet_timeout_s: float = 600.0
    keep: bool = False  # keep the state folder (logs, database) for a look afterwards


@dataclass
class ChaosResult:
    verdict: Verdict
    faults: list[tuple[str, float]]  # (kind, seconds to recover)
    scenarios: int
    crashes: dict[str, list[int]]
    state: Path
    llm_outcomes: dict[str, int] = field(default_factory=dict)  # LLM calls the analyzers made, by outcome
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return sum(self.verdict.lost.values())

    @property
    def duplicated(self) -> int:
        return sum(self.verdict.duplicated.values())

    @property
    def recovered_p95_s(self) -> float:
        times = sorted(t for _, t in self.faults)
        if not times:
            return 0.0
        return times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]

    def line(self) -> str:
        return (
            f"chaos scenarios={self.scenarios} faults={len(self.faults)} lost={self.lost}"
            f" duplicated={self.duplicated} recovered_p95_s={self.recovered_p95_s:.1f}"
        )

    def report(self) -> list[str]:
        by_kind: dict[str, list[float]] = defaultdict(list)
        for kind, t in self.faults:
            by_kind[kind].append(t)
        out = [f"{k:16} recovered in {', '.join(f'{t:.1f}' for t in ts)} s" for k, ts in sorted(by_kind.items())]
        out += [f"lost {k}: {n}" for k, n in sorted(self.verdict.lost.items())]
        out += [f"duplicated {k}: {n}" for k, n in sorted(self.verdict.duplicated.items())]
        out += [f"dead with a reason {k}: {n}" for k, n in sorted(self.verdict.dead.items())]
        out += [f"unasked exit of {k}: codes {v}" for k, v in sorted(self.crashes.items())]
        out += self.verdict.examples + self.notes
        out.append("LLM calls by outcome: " + (", ".join(f"{o} {n}" for o, n in self.llm_outcomes.items()) or "none"))
        out.append(f"state: {self.state}")
        return out


_PROGRESS = """
SELECT (SELECT count(*) FROM tracks) + (SELECT count(*) FROM embeddings) + (SELECT count(*) FROM enrichments)
     + (SELECT count(*) FROM analyses) + (SELECT count(*) FROM images WHERE status <> 'pending')
     + (SELECT coalesce(sum(frames_done), 0) FROM streams) + (SELECT count(*) FROM dead_jobs)
     + (SELECT count(*) FROM ledger WHERE stage = 'ingested'),
       (SELECT count(*) FROM jobs) + (SELECT count(*) FROM images WHERE status = 'pending')
     + (SELECT count(*) FROM streams WHERE status IN ('pending', 'running', 'retrying'))
"""


class _Run:
    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.state = Path(tempfile.mkdtemp(prefix="contentfn-chaos-"))
        os.chmod(self.state, 0o755)  # the embedded server runs as an unprivileged user when we are root
        self.expected = Expected(bucket=BUCKET)
        self.uploads: list[tuple[str, bytes]] = []
        self.uploaded = 0
        self.upload_errors = 0
        self.notes: list[str] = []
        self._stop_uploads = threading.Event()

    # -- set-up ------------------------------------------------------------------------------
    def prepare(self) -> None:
        c = self.config
        data_dir = self.state / "data"
        total = c.tracks * 1200 + c.images * 20_000
        self.mount = BucketMount(data_dir / "buckets", size_mb=max(32, 3 * total // (1 << 20)))
        if not self.mount.mounted:
            self.notes.append(f"disk full is not injected: the tmpfs mount failed ({self.mount.why})")
        self.pg = Postgres(self.state)
        Database(self.pg.url).migrate()
        self.redis = Redis(self.state)
        self.llm = LlmControl()
        model = tiny_model(self.state / "tiny.onnx")
        self.api_port = free_port()
        self.streams_file = self.state / "stream.mp4"
        self.stream_frames = _write_stream(self.streams_file, c.stream_frames)
        settings = {
            "data_dir": str(data_dir),
            "model_dir": os.environ.get("CONTENTFN_MODEL_DIR") or str(REPO / ".contentfn/models/all-MiniLM-L6-v2"),
            "database_url": self.pg.url,
            "bucket": BUCKET,
            "redis_url": self.redis.url,
            "llm_base_url": self.llm.url,
            "llm_api_key": self.llm.api_key,
            "llm_timeout_s": "2",
            "http_allow_networks": '["127.0.0.0/8"]',  # the LLM server is on loopback
            "llm_breaker_reset_s": "2",
            "analysis_min_confidence": "0.99",  # ask the LLM for almost every track
            "detector_model_path": str(model),
            "api_port": str(self.api_port),
            "worker_poll_s": "0.1",
            "worker_failure_backoff_cap_s": "2",
            "queue_backoff_base_s": "0.2",
            "queue_backoff_cap_s": "3",
            "queue_visibility_s": "20",
            "queue_max_attempts": "12",
            "bucket_backoff_base_s": "0.2",
            "bucket_backoff_cap_s": "3",
            "bucket_max_attempts": "20",
            "idempotency_ttl_s": "20",
            "stream_allow_file_urls": "true",
            "stream_lease_s": "3",
            "stream_backoff_cap_s": "2",
            "log_level": "WARNING",
        }
        self.env = env_for(dict(os.environ), **settings)
        self.env.pop("CI", None)
        (self.state / "logs").mkdir()
        specs = [RoleSpec(r, [r]) for r in KILLED_ROLES]
        # Two more workers whose wall clocks are minutes off; they share the queues with the others.
        specs += [RoleSpec("embed-ahead", ["embed"], skew="+5m"), RoleSpec("analyze-behind", ["analyze"], skew="-5m")]
        self.procs = RoleProcs(self.env, self.state / "logs", specs)
        self._plan_uploads()

    def _plan_uploads(self) -> None:
        c = self.config
        per_file = max(20, min(500, c.tracks // 20 or 1))
        batch: list[dict[str, object]] = []
        files = 0
        for track in generate_tracks(c.tracks, c.seed):
            batch.append(track)
            if len(batch) == per_file:
                self._add_track_file(files, batch)
                files, batch = files + 1, []
        if batch:
            self._add_track_file(files, batch)
        track_files = list(self.uploads)
        images = [(f"images/img-{i:05d}.jpg", data) for i, data in enumerate(distinct_jpegs(c.images, seed=c.seed))]
        for key, data in images:
            self.expected.images[key] = hashlib.sha256(data).hexdigest()
        # Interleaved, so images and tracks arrive through the whole run.
        self.uploads = []
        for i in range(max(len(track_files), len(images))):
            self.uploads += track_files[i : i + 1] + images[i : i + 1]

    def _add_track_file(self, n: int, batch: list[dict[str, object]]) -> None:
        key = f"tracks/part-{n:05d}.jsonl"
        self.expected.track_files[key] = [str(t["id"]) for t in batch]
        self.uploads.append((key, "".join(json.dumps(t) + "\n" for t in batch).encode()))

    # -- the run -----------------------------------------------------------------------------
    def upload_all(self, spread_s: float) -> None:
        """Put every planned object into the bucket over about ``spread_s``, retrying through a full disk."""
        blob = LocalBlob(self.state / "data" / "buckets")
        pause = spread_s / max(1, len(self.uploads))
        for key, data in self.uploads:
            while not self._stop_uploads.is_set():
                try:
                    blob.put(BUCKET, key, data)
                    break
                except OSError:
                    self.upload_errors += 1
                    self._stop_uploads.wait(0.2)
            self.uploaded += 1
            self._stop_uploads.wait(pause)

    def progress(self) -> tuple[int, int] | None:
        try:
            rows = query(self.pg.url, _PROGRESS)
        except Exception:
            return None
        return int(rows[0][0]), int(rows[0][1])

    def register_stream(self) -> int:
        body = json.dumps({"url": self.streams_file.as_uri(), "fps": STREAM_FPS}).encode()
        end = time.monotonic() + 120
        while True:
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.api_port}/streams",
                data=body,
                headers={"content-type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    stream_id = int(json.loads(resp.read())["stream"]["id"])
                    self.expected.streams[stream_id] = self.stream_frames
                    return stream_id
            except (urllib.error.URLError, OSError):
                if time.monotonic() > end:
                    raise
                self.procs.supervise()
                time.sleep(0.3)

    def inject(self, kind: str, hold: float) -> None:
        """Break one thing for ``hold`` seconds, then put it back as a supervisor or operator would."""
        if kind.startswith("llm_"):
            self._wait_for_analyze_work()  # analysis yields to embedding: break the LLM while it is in use
        if kind.startswith("kill:"):
            role = kind.removeprefix("kill:")
            if role == "streams":
                self.register_stream()  # a stream in flight when its worker dies
                time.sleep(0.5)
            self.procs.kill(role)
            time.sleep(hold)
            self.procs.start(role)
        elif kind == "pg_restart":
            self.pg.restart_immediate()
        elif kind == "redis_restart":
            self.redis.kill()
            time.sleep(hold)
            self.redis.start()
        elif kind == "llm_down":
            self.llm.down()
            time.sleep(hold)
            self.llm.up()
        elif kind in ("llm_hang", "llm_429"):
            self.llm.mode("hang" if kind == "llm_hang" else "429")
            time.sleep(hold)
            self.llm.mode("ok")
        elif kind == "disk_full":
            self.mount.fill()
            time.sleep(hold)
            self.mount.free()
        else:
            raise ValueError(kind)

    def _wait_for_analyze_work(self, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.procs.supervise()
            try:
                if query(self.pg.url, "SELECT count(*) FROM jobs WHERE kind = 'analyze' AND visible_at <= now()")[0][0]:
                    return
            except Exception:
                pass
            time.sleep(0.1)
        self.notes.append("an LLM fault began with no analysis waiting")

    def wait_for_progress(self, timeout: float = 180.0) -> float:
        """Seconds from now until the pipeline makes progress again (or has nothing left to do)."""
        started = time.monotonic()
        before: int | None = None
        while time.monotonic() - started < timeout:
            self.procs.supervise()
            seen = self.progress()
            if seen is not None:
                done, pending = seen
                if before is None:
                    before = done
                elif done > before or (pending == 0 and self.uploaded == len(self.uploads)):
                    return time.monotonic() - started
            time.sleep(0.1)
        self.notes.append(f"no progress within {timeout:.0f} s of a fault's end")
        return timeout

    def wait_quiet(self) -> None:
        end = time.monotonic() + self.config.quiet_timeout_s
        calm = 0
        while time.monotonic() < end:
            self.procs.supervise()
            seen = self.progress()
            ingested = self._all_ingested()
            if seen is not None and seen[1] == 0 and ingested:
                calm += 1
                if calm >= 5:
                    return
            else:
                calm = 0
            time.sleep(0.5)
        self.notes.append(f"the pipeline was not quiet after {self.config.quiet_timeout_s:.0f} s")

    def _all_ingested(self) -> bool:
        try:
            rows = query(
                self.pg.url,
                "SELECT count(*) FROM ledger WHERE stage = 'ingested' AND status IN ('ok', 'partial', 'failed', 'rejected')"
                " AND subject LIKE %s",
                (f"object:{BUCKET}/%",),
            )
        except Exception:
            return False
        return self.uploaded == len(self.uploads) and int(rows[0][0]) >= len(self.uploads)

    def close(self) -> None:
        self._stop_uploads.set()
        for part in ("procs", "llm", "redis", "pg", "mount"):
            if not hasattr(self, part):
                continue
            try:
                if part == "procs":
                    self.procs.stop_all()
                elif part == "llm":
                    self.llm.down()
                elif part == "mount":
                    self.mount.unmount()
                else:
                    getattr(self, part).stop()
            except Exception:
                log.exception("could not stop %s", part)
        if not self.config.keep:
            shutil.rmtree(self.state, ignore_errors=True)


def _write_stream(path: Path, frames: int) -> int:
    """A small H.264 file of ``frames`` distinct frames at STREAM_FPS; returns how many frames it holds."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=STREAM_FPS)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            img = np.zeros((120, 160, 3), dtype=np.uint8)
            img[:, :, 0] = (i * 7) % 256
            img[(i * 3) % 100 : (i * 3) % 100 + 20, (i * 5) % 140 : (i * 5) % 140 + 20] = 255
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    with av.open(str(path)) as src:
        return sum(1 for _ in src.decode(video=0))


def run_chaos(config: ChaosConfig) -> ChaosResult:
    run = _Run(config)
    faults: list[tuple[str, float]] = []
    try:
        run.prepare()
        kinds = [k for k in FAULT_KINDS if k != "disk_full" or run.mount.mounted]
        schedule = [k for _ in range(config.rounds) for k in run.rng.sample(kinds, len(kinds))]
        holds = [run.rng.uniform(*config.hold_s) for _ in schedule]
        gaps = [run.rng.uniform(*config.gap_s) for _ in schedule]
        run.procs.start_all()
        run.register_stream()
        spread = sum(holds) + sum(gaps) + 2.0 * len(schedule)
        uploader = threading.Thread(target=run.upload_all, args=(spread,), name="uploader", daemon=True)
        uploader.start()
        time.sleep(gaps[0] if gaps else 0)
        for kind, hold, gap in zip(schedule, holds, gaps, strict=True):
            log.warning("fault %s for %.1f s", kind, hold)
            run.inject(kind, hold)
            faults.append((kind, run.wait_for_progress()))
            time.sleep(gap)
        uploader.join()
        run.wait_quiet()
        verdict = check(run.pg.url, run.expected)
        llm = query(run.pg.url, "SELECT outcome, count(*) FROM llm_calls GROUP BY outcome ORDER BY outcome")
        llm_outcomes = {str(o): int(n) for o, n in llm}
        return ChaosResult(
            verdict=verdict,
            faults=faults,
            scenarios=len({k for k, _ in faults}) + 1,  # + the skewed clocks, there all along
            crashes=dict(run.procs.exits),
            state=run.state,
            llm_outcomes=llm_outcomes,
            notes=[*run.notes, f"upload retries through faults: {run.upload_errors}"],
        )
    finally:
        run.close()
