"""Rows of ``images``, ``detections`` and ``streams``: the SQL the ingest path, worker and API share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from shared.queue.kinds import DETECT_JOB
from shared.vision.detection import Detection

__all__ = [
    "DETECT_JOB",
    "ImageResult",
    "detection_columns",
    "detections_for_image",
    "get_image",
    "image_summary",
    "list_images",
    "upsert_image",
    "write_image_results",
]


_MAX_REASON_CHARS = 500


def detection_columns(rows: Sequence[tuple[Any, Detection]]) -> list[list[Any]]:
    """Column arrays for an ``unnest`` insert of detections: each row's key (an image id or a frame
    time), then class id, label, score and the box's four numbers."""
    return [
        [key for key, _ in rows],
        [d.class_id for _, d in rows],
        [d.label for _, d in rows],
        [d.score for _, d in rows],
        *([d.box[k] for _, d in rows] for k in range(4)),
    ]


def upsert_image(
    conn: psycopg.Connection[Any],
    *,
    content_hash: str,
    bucket: str,
    key: str,
    size: int,
    fmt: str | None,
    rejected: str | None = None,
) -> tuple[int, str, bool]:
    """Insert the image once per content hash. Returns (id, status, created)."""
    status = "rejected" if rejected else "pending"
    row = conn.execute(
        """
        INSERT INTO images (content_hash, bucket, key, bytes, format, status, reason)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (content_hash) DO NOTHING
        RETURNING id, status
        """,
        (content_hash, bucket, key, size, fmt, status, rejected),
    ).fetchone()
    if row is not None:
        return int(row[0]), str(row[1]), True
    existing = conn.execute("SELECT id, status FROM images WHERE content_hash = %s", (content_hash,)).fetchone()
    assert existing is not None
    return int(existing[0]), str(existing[1]), False


@dataclass(frozen=True)
class ImageResult:
    """The outcome of one image job: detections, or the reason it was refused."""

    image_id: int
    width: int | None = None
    height: int | None = None
    format: str | None = None
    detections: tuple[Detection, ...] = ()
    rejected: str | None = None


def write_image_results(conn: psycopg.Connection[Any], model: str, results: Sequence[ImageResult]) -> int:
    """Replace the detections of each image for ``model`` and mark the images; the caller commits.

    Replace, not append: a job delivered twice (a worker died after writing but before its lease
    was seen to be gone) leaves exactly one set of rows. Returns the number of detection rows written.
    """
    if not results:
        return 0
    ids = sorted({r.image_id for r in results})
    # Lock the image rows (in id order: no deadlock between two writers) so that two writers of one
    # image, a stale lease and its successor, run one after the other: the second replaces the first.
    conn.execute("SELECT id FROM images WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,))
    conn.execute("DELETE FROM detections WHERE image_id = ANY(%s) AND model = %s", (ids, model))
    rows: list[tuple[Any, Detection]] = [(r.image_id, d) for r in results for d in r.detections]
    if rows:
        with conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO detections (image_id, model, class_id, label, score, x1, y1, x2, y2)
                SELECT i, %s, c, l, s, a, b, c2, d
                FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::real[],
                            %s::real[], %s::real[], %s::real[], %s::real[]) AS u(i, c, l, s, a, b, c2, d)
                """,
                (model, *detection_columns(rows)),
            )
    conn.execute(
        """
        UPDATE images SET status = CASE WHEN u.reason IS NULL THEN 'done' ELSE 'rejected' END,
               reason = u.reason, width = u.w, height = u.h, format = coalesce(u.f, images.format),
               model = %s, detected_at = now()
        FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::int[], %s::text[]) AS u(id, reason, w, h, f)
        WHERE images.id = u.id
        """,
        (
            model,
            [r.image_id for r in results],
            [None if r.rejected is None else r.rejected[:_MAX_REASON_CHARS] for r in results],
            [r.width for r in results],
            [r.height for r in results],
            [r.format for r in results],
        ),
    )
    return len(rows)


def get_image(conn: psycopg.Connection[Any], image_id: int) -> dict[str, Any] | None:
    cur = conn.execute(
        "SELECT id, bucket, key, bytes, format, width, height, status, reason, model, detected_at, created_at"
        " FROM images WHERE id = %s",
        (image_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d.name for d in cur.description or []], row, strict=True))


def detections_for_image(conn: psycopg.Connection[Any], image_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT model, class_id, label, score, x1, y1, x2, y2 FROM detections"
        " WHERE image_id = %s ORDER BY score DESC, id",
        (image_id,),
    ).fetchall()
    return [
        {"model": m, "class_id": c, "label": lab, "score": round(float(s), 4), "box": [x1, y1, x2, y2]}
        for m, c, lab, s, x1, y1, x2, y2 in rows
    ]


def list_images(
    conn: psycopg.Connection[Any], *, status: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Images newest first, with their detection counts; ``before`` (an id) pages back."""
    rows = conn.execute(
        """
        SELECT i.id, i.bucket, i.key, i.status, i.reason, i.format, i.width, i.height, i.model,
               i.detected_at, i.created_at, count(d.id)
        FROM (
            SELECT * FROM images
            WHERE (%s::text IS NULL OR status = %s::text) AND (%s::bigint IS NULL OR id < %s::bigint)
            ORDER BY id DESC LIMIT %s
        ) i
        LEFT JOIN detections d ON d.image_id = i.id
        GROUP BY i.id, i.bucket, i.key, i.status, i.reason, i.format, i.width, i.height, i.model,
                 i.detected_at, i.created_at
        ORDER BY i.id DESC
        """,
        (status, status, before, before, limit),
    ).fetchall()
    names = (
        "id",
        "bucket",
        "key",
        "status",
        "reason",
        "format",
        "width",
        "height",
        "model",
        "detected_at",
        "created_at",
    )
    return [{**dict(zip(names, r[:-1], strict=True)), "detections": int(r[-1])} for r in rows]


def image_summary(conn: psycopg.Connection[Any], *, limit: int = 10) -> dict[str, Any]:
    """Counts by status, detections stored, and the newest images with their detection counts."""
    by_status = dict(conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall())
    row = conn.execute("SELECT count(*) FROM detections").fetchone()
    recent = conn.execute(
        """
        SELECT i.id, i.key, i.status, i.reason, count(d.id)
        FROM (SELECT * FROM images ORDER BY id DESC LIMIT %s) i
        LEFT JOIN detections d ON d.image_id = i.id
        GROUP BY i.id, i.key, i.status, i.reason ORDER BY i.id DESC
        """,
        (limit,),
    ).fetchall()
    return {
        "images": {str(k): int(v) for k, v in by_status.items()},
        "detections": int(row[0]) if row else 0,
        "recent": [{"id": r[0], "key": r[1], "status": r[2], "reason": r[3], "detections": int(r[4])} for r in recent],
    }
