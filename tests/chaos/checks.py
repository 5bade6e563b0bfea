"""What a chaos run must end with, checked in SQL: every expected effect exactly once, no job left behind.

An expected effect that is missing, with no dead letter saying why, is *lost*; one that is there
more than once (or counted more than once) is *duplicated*.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from tests.vision_fixtures import TINY_BOXES_PER_IMAGE

__all__ = ["Expected", "Verdict", "check"]


@dataclass
class Expected:
    bucket: str
    track_files: dict[str, list[str]] = field(default_factory=dict)  # object key -> source ids in it
    images: dict[str, str] = field(default_factory=dict)  # object key -> sha256 of the bytes
    streams: dict[int, int] = field(default_factory=dict)  # stream id -> frames the file has


@dataclass
class Verdict:
    lost: Counter[str] = field(default_factory=Counter)
    duplicated: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)  # effects given up on, with a reason
    examples: list[str] = field(default_factory=list)

    def miss(self, what: str, example: str) -> None:
        self.lost[what] += 1
        if len(self.examples) < 20:
            self.examples.append(f"lost {what}: {example}")

    def twice(self, what: str, n: int, example: str) -> None:
        self.duplicated[what] += n
        if len(self.examples) < 20:
            self.examples.append(f"duplicated {what} x{n}: {example}")


def _rows(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return conn.execute(sql, params).fetchall()


def check(url: str, expected: Expected) -> Verdict:
    v = Verdict()
    with psycopg.connect(url) as conn:
        dead_objects = {
            subject.removeprefix(f"object:{expected.bucket}/")
            for (subject,) in _rows(
                conn,
                "SELECT subject FROM ledger WHERE stage = 'ingested' AND status IN ('failed', 'rejected')"
                " AND last_error IS NOT NULL",
            )
        }
        dead_tracks: dict[str, set[int]] = {}
        for kind, track_id in _rows(
            conn, "SELECT kind, (payload->>'track_id')::bigint FROM dead_jobs WHERE payload ? 'track_id'"
        ):
            dead_tracks.setdefault(kind, set()).add(int(track_id))
        for (error,) in _rows(conn, "SELECT last_error FROM dead_jobs"):
            if not (error or "").strip():
                v.miss("dead job reason", "a dead letter without its error")
        _check_tracks(conn, expected, dead_objects, dead_tracks, v)
        _check_images(conn, expected, dead_objects, v)
        _check_streams(conn, expected, v)
        for kind, n in _rows(conn, "SELECT kind, count(*) FROM jobs GROUP BY kind"):
            for _ in range(int(n)):
                v.miss("job neither done nor dead", kind)
        for kind, n in _rows(conn, "SELECT kind, count(*) FROM dead_jobs GROUP BY kind"):
            v.dead[kind] += int(n)
    return v


def _check_tracks(
    conn: psycopg.Connection[Any],
    expected: Expected,
    dead_objects: set[str],
    dead_tracks: dict[str, set[int]],
    v: Verdict,
) -> None:
    by_source_id: dict[str, list[int]] = {}
    for track_id, source_id in _rows(conn, "SELECT id, source_id FROM tracks"):
        by_source_id.setdefault(source_id, []).append(int(track_id))
    for source_id, ids in by_source_id.items():
        if len(ids) > 1:
            v.twice("track", len(ids) - 1, source_id)
    track_ids: list[int] = []
    for key, source_ids in expected.track_files.items():
        for source_id in source_ids:
            ids = by_source_id.get(source_id)
            if ids:
                track_ids.append(ids[0])
            elif key in dead_objects:
                v.dead["track row"] += 1
            else:
                v.miss("track", f"{source_id} of {key}")
    counts = {
        "embedding": "SELECT track_id, model, count(*) FROM embeddings GROUP BY track_id, model",
        "enrichment": "SELECT track_id, kind, count(*) FROM enrichments WHERE kind = 'features' GROUP BY track_id, kind",
        "analysis": "SELECT track_id, analyzer || ' ' || prompt_version || ' ' || content_hash, count(*)"
        " FROM analyses GROUP BY track_id, analyzer, prompt_version, content_hash",
    }
    job_kind = {"embedding": "embed", "enrichment": "enrich", "analysis": "analyze"}
    for effect, sql in counts.items():
        have: set[int] = set()
        for track_id, natural, n in _rows(conn, sql):
            have.add(int(track_id))
            if n > 1:
                v.twice(effect, int(n) - 1, f"track {track_id} {natural}")
        dead = dead_tracks.get(job_kind[effect], set())
        for track_id in track_ids:
            if track_id in have:
                continue
            if track_id in dead:
                v.dead[effect] += 1
            else:
                v.miss(effect, f"track {track_id}")


def _check_images(conn: psycopg.Connection[Any], expected: Expected, dead_objects: set[str], v: Verdict) -> None:
    rows = {
        content_hash: (int(image_id), status)
        for image_id, content_hash, status in _rows(conn, "SELECT id, content_hash, status FROM images")
    }
    boxes = {
        int(image_id): (int(n), int(distinct))
        for image_id, n, distinct in _rows(
            conn,
            "SELECT image_id, count(*), count(DISTINCT (model, class_id, x1, y1, x2, y2)) FROM detections"
            " WHERE image_id IS NOT NULL GROUP BY image_id",
        )
    }
    dead_images = {
        int(i) for (i,) in _rows(conn, "SELECT (payload->>'image_id')::bigint FROM dead_jobs WHERE kind = 'detect'")
    }
    for key, content_hash in expected.images.items():
        row = rows.get(content_hash)
        if row is None:
            if key in dead_objects:
                v.dead["image"] += 1
            else:
                v.miss("image", key)
            continue
        image_id, status = row
        if image_id in dead_images or status == "rejected":
            v.dead["detections"] += 1
            continue
        n, distinct = boxes.get(image_id, (0, 0))
        if status != "done" or n < TINY_BOXES_PER_IMAGE:
            v.miss("detections", f"image {image_id} ({key}, {status}, {n} boxes)")
        if n > distinct or distinct > TINY_BOXES_PER_IMAGE:
            v.twice("detections", n - min(distinct, TINY_BOXES_PER_IMAGE), f"image {image_id} ({n} boxes)")


def _check_streams(conn: psycopg.Connection[Any], expected: Expected, v: Verdict) -> None:
    for stream_id, frames in expected.streams.items():
        row = _rows(conn, "SELECT status, frames_done, last_error FROM streams WHERE id = %s", (stream_id,))
        if not row:
            v.miss("stream", str(stream_id))
            continue
        status, frames_done, last_error = row[0]
        per_frame = _rows(
            conn,
            "SELECT frame_ts, count(*), count(DISTINCT (model, class_id, x1, y1, x2, y2)) FROM detections"
            " WHERE stream_id = %s GROUP BY frame_ts",
            (stream_id,),
        )
        if status != "ended":
            v.miss("stream end", f"stream {stream_id} is {status} ({last_error})")
        if len(per_frame) < frames:
            v.miss("stream frames", f"stream {stream_id}: {len(per_frame)} of {frames} frames")
            v.lost["stream frames"] += frames - len(per_frame) - 1
        extra = sum(n - TINY_BOXES_PER_IMAGE for _, n, _ in per_frame if n > TINY_BOXES_PER_IMAGE)
        extra += max(0, len(per_frame) - frames)
        if extra:
            v.twice("stream frame detections", extra, f"stream {stream_id}")
        if frames_done > frames:
            v.twice(
                "stream frames counted", int(frames_done) - frames, f"stream {stream_id}: {frames_done} of {frames}"
            )
        elif frames_done < frames:
            v.miss("stream frames counted", f"stream {stream_id}: {frames_done} of {frames}")
