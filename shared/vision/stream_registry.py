"""Stream registration and leases: the SQL behind ``/streams`` and the stream workers.

A stream is processed by at most one worker at a time: the worker holding an unexpired lease.
Leases are renewed well before they run out; a worker that dies stops renewing and another takes
the stream over once the lease has expired.

Registration is where quotas hold: active streams (pending, running, retrying) are counted overall
and per owner under one advisory lock, so two registrations at once cannot both take the last place.
A URL with credentials is refused, and any stored URL is listed without its ``user:password@``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from shared.errors import PoisonError
from shared.vision.detection import Detection
from shared.vision.store import detection_columns

__all__ = [
    "ACTIVE_STATUSES",
    "StreamLease",
    "StreamQuotaExceeded",
    "StreamRefused",
    "acquire_streams",
    "finish_stream",
    "list_streams",
    "redact_url",
    "register_stream",
    "renew_leases",
    "set_stream_status",
    "stop_stream",
    "validate_stream_url",
    "write_frame",
]

_SCHEMES = {"rtsp", "rtsps", "http", "https"}
_FIELDS = (
    "id, url, fps, keyframes_only, model, owner, status, lease_owner, lease_expires_at, last_error,"
    " last_error_code, frames_done, frames_dropped, last_frame_ts, created_at, updated_at"
)
ACTIVE_STATUSES = ("pending", "running", "retrying")
# Statuses a worker lets go of: the stream will not be read again.
_CLOSED = "('stopped', 'ended', 'failed', 'expired')"
# One lock for every registration: the quota counts and the insert happen under it.
_QUOTA_LOCK = 0x636F6E74656E74  # "content"


class StreamRefused(PoisonError):
    """The stream URL is not one a worker may open."""


class StreamQuotaExceeded(Exception):
    """Registering one more stream would exceed a count quota (overall or the owner's)."""


@dataclass(frozen=True)
class StreamLease:
    id: int
    url: str
    fps: float
    keyframes_only: bool
    last_frame_ts: float | None = None  # the newest frame stored: a file source resumes after it


def validate_stream_url(url: str, *, allow_files: bool, policy: Any | None = None) -> str:
    """rtsp/rtsps/http/https to an allowed host (the outbound address policy); file URLs only if allowed."""
    if len(url) > 2000 or any(ord(ch) < 33 for ch in url):
        raise StreamRefused("stream URL is too long or contains spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_files or not parts.path.startswith("/"):
            raise StreamRefused("file URLs are not allowed for streams here")
        return url
    if scheme not in _SCHEMES or not parts.hostname:
        raise StreamRefused("stream URL must be rtsp://, rtsps://, http:// or https:// with a host")
    if "@" in parts.netloc:
        # They would be stored, listed and logged; a source needing them belongs behind a gateway.
        raise StreamRefused("credentials in stream URLs are refused")
    if policy is not None:
        port = parts.port or {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}[scheme]
        policy.check_host(parts.hostname, port)
    return url


def register_stream(
    conn: psycopg.Connection[Any],
    url: str,
    fps: float,
    *,
    model: str | None,
    keyframes_only: bool,
    owner: str = "default",
    max_active: int | None = None,
    max_per_owner: int | None = None,
) -> dict[str, Any]:
    """Insert a pending stream; StreamQuotaExceeded when it would pass ``max_active`` or ``max_per_owner``."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_QUOTA_LOCK,))
    total, mine = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE owner = %s) FROM streams WHERE status = ANY(%s)",
        (owner, list(ACTIVE_STATUSES)),
    ).fetchone() or (0, 0)
    if max_active is not None and total >= max_active:
        raise StreamQuotaExceeded(f"at most {max_active} streams may be active at once")
    if max_per_owner is not None and mine >= max_per_owner:
        raise StreamQuotaExceeded(f"at most {max_per_owner} streams may be active per key")
    cur = conn.execute(
        f"INSERT INTO streams (url, fps, model, keyframes_only, owner) VALUES (%s, %s, %s, %s, %s) RETURNING {_FIELDS}",
        (url, fps, model, keyframes_only, owner),
    )
    return _row(cur, cur.fetchone())


def list_streams(conn: psycopg.Connection[Any], *, before: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; ``before`` (an id) pages back."""
    cur = conn.execute(
        f"SELECT {_FIELDS} FROM streams WHERE (%s::bigint IS NULL OR id < %s::bigint) ORDER BY id DESC LIMIT %s",
        (before, before, limit),
    )
    return [_row(cur, r) for r in cur.fetchall()]


def get_stream(conn: psycopg.Connection[Any], stream_id: int) -> dict[str, Any] | None:
    cur = conn.execute(f"SELECT {_FIELDS} FROM streams WHERE id = %s", (stream_id,))
    row = cur.fetchone()
    return None if row is None else _row(cur, row)


def stream_detections(
    conn: psycopg.Connection[Any], stream_id: int, *, after: float | None, frames: int
) -> list[dict[str, Any]]:
    """Detections of up to ``frames`` frames with a timestamp after ``after``, oldest first, grouped
    by frame (frames in which nothing was found have no rows and are not listed)."""
    rows = conn.execute(
        """
        WITH stamps AS (
            SELECT DISTINCT frame_ts FROM detections
            WHERE stream_id = %s AND (%s::float8 IS NULL OR frame_ts > %s::float8)
            ORDER BY frame_ts LIMIT %s
        )
        SELECT d.frame_ts, d.model, d.class_id, d.label, d.score, d.x1, d.y1, d.x2, d.y2
        FROM detections d JOIN stamps USING (frame_ts)
        WHERE d.stream_id = %s
        ORDER BY d.frame_ts, d.score DESC, d.id
        """,
        (stream_id, after, after, frames, stream_id),
    ).fetchall()
    out: list[dict[str, Any]] = []
    for ts, model, class_id, label, score, x1, y1, x2, y2 in rows:
        if not out or out[-1]["frame_ts"] != ts:
            out.append({"frame_ts": ts, "detections": []})
        out[-1]["detections"].append(
            {
                "model": model,
                "class_id": class_id,
                "label": label,
                "score": round(float(score), 4),
                "box": [x1, y1, x2, y2],
            }
        )
    return out


def stop_stream(conn: psycopg.Connection[Any], stream_id: int) -> dict[str, Any] | None:
    """Mark stopped; its worker sees it at the next renewal and lets go."""
    cur = conn.execute(
        f"UPDATE streams SET status = 'stopped', updated_at = now() WHERE id = %s RETURNING {_FIELDS}", (stream_id,)
    )
    row = cur.fetchone()
    return None if row is None else _row(cur, row)


def acquire_streams(
    conn: psycopg.Connection[Any], owner: str, lease_s: float, limit: int, *, model: str | None = None
) -> list[StreamLease]:
    """Take up to ``limit`` streams that nobody holds (never leased, or the lease expired).

    With ``model``, only streams that asked for no model in particular or for this one.
    """
    if limit <= 0:
        return []
    rows = conn.execute(
        """
        UPDATE streams s SET lease_owner = %(owner)s, lease_expires_at = now() + make_interval(secs => %(lease)s),
               status = 'running', updated_at = now()
        WHERE s.id IN (
            SELECT id FROM streams
            WHERE status IN ('pending', 'running', 'retrying')
              AND (lease_expires_at IS NULL OR lease_expires_at < now())
              AND (model IS NULL OR %(model)s::text IS NULL OR model = %(model)s::text)
            ORDER BY id LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED)
        RETURNING s.id, s.url, s.fps, s.keyframes_only, s.last_frame_ts
        """,
        {"owner": owner, "lease": lease_s, "limit": limit, "model": model},
    ).fetchall()
    return [
        StreamLease(int(r[0]), str(r[1]), float(r[2]), bool(r[3]), None if r[4] is None else float(r[4])) for r in rows
    ]


def renew_leases(conn: psycopg.Connection[Any], owner: str, ids: Sequence[int], lease_s: float) -> set[int]:
    """Extend our leases; returns the ids still ours (a stopped or taken-over stream is not)."""
    if not ids:
        return set()
    rows = conn.execute(
        f"""
        UPDATE streams SET lease_expires_at = now() + make_interval(secs => %s)
        WHERE id = ANY(%s) AND lease_owner = %s AND status NOT IN {_CLOSED}
        RETURNING id
        """,
        (lease_s, list(ids), owner),
    ).fetchall()
    return {int(r[0]) for r in rows}


def set_stream_status(
    conn: psycopg.Connection[Any],
    stream_id: int,
    owner: str,
    status: str,
    error: str | None,
    code: str | None = None,
) -> None:
    """``error`` must already be redacted (see infra.gpu_worker.stream_source.describe_failure)."""
    conn.execute(
        "UPDATE streams SET status = %s, last_error = %s, last_error_code = %s, updated_at = now()"
        " WHERE id = %s AND lease_owner = %s AND status <> 'stopped'",
        (status, None if error is None else error[:1000], code, stream_id, owner),
    )


def finish_stream(
    conn: psycopg.Connection[Any],
    stream_id: int,
    owner: str,
    status: str | None,
    error: str | None = None,
    code: str | None = None,
) -> None:
    """Give the lease back; with ``status`` ('ended', 'failed', 'expired'), also close the stream for
    good, recording ``code`` and the redacted ``error`` when given."""
    conn.execute(
        "UPDATE streams SET lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),"
        " status = CASE WHEN status = 'stopped' THEN status ELSE coalesce(%s, status) END,"
        " last_error = CASE WHEN %s::text IS NULL THEN last_error ELSE %s END,"
        " last_error_code = CASE WHEN %s::text IS NULL THEN last_error_code ELSE %s END"
        " WHERE id = %s AND lease_owner = %s",
        (status, code, None if error is None else error[:1000], code, code, stream_id, owner),
    )


def write_frame(
    conn: psycopg.Connection[Any],
    stream_id: int,
    owner: str,
    model: str,
    frames: Sequence[tuple[float, Sequence[Detection]]],
    dropped: int,
) -> bool:
    """Store the detections of some frames, if the lease is still ours; False means it was lost.

    Rows of one (stream, frame_ts, model) are replaced, so a frame processed again after a takeover
    is not stored twice; and only frames after the newest one stored count in ``frames_done``, so a
    file read again from its start (a worker killed mid-file, a reconnect) is not counted twice.
    """
    stamps = [ts for ts, _ in frames]
    held = conn.execute(
        "UPDATE streams SET frames_done = frames_done"
        " + (SELECT count(*) FROM unnest(%s::float8[]) AS f(t) WHERE last_frame_ts IS NULL OR f.t > last_frame_ts),"
        " frames_dropped = frames_dropped + %s,"
        " last_frame_ts = greatest(last_frame_ts, %s), last_error = NULL, last_error_code = NULL,"
        " status = 'running', updated_at = now()"
        f" WHERE id = %s AND lease_owner = %s AND status NOT IN {_CLOSED} RETURNING id",
        (stamps, dropped, max(stamps, default=None), stream_id, owner),
    ).fetchone()
    if held is None:
        return False
    conn.execute(
        "DELETE FROM detections WHERE stream_id = %s AND model = %s AND frame_ts = ANY(%s)", (stream_id, model, stamps)
    )
    rows: list[tuple[Any, Detection]] = [(ts, d) for ts, dets in frames for d in dets]
    if rows:
        conn.execute(
            """
            INSERT INTO detections (stream_id, frame_ts, model, class_id, label, score, x1, y1, x2, y2)
            SELECT %s, t, %s, c, l, s, a, b, c2, d
            FROM unnest(%s::float8[], %s::int[], %s::text[], %s::real[],
                        %s::real[], %s::real[], %s::real[], %s::real[]) AS u(t, c, l, s, a, b, c2, d)
            """,
            (stream_id, model, *detection_columns(rows)),
        )
    return True


def _row(cur: psycopg.Cursor[Any], row: Any) -> dict[str, Any]:
    out = dict(zip([d.name for d in cur.description or []], row, strict=True))
    if isinstance(out.get("url"), str):
        # Rows registered before credentials were refused may still hold them.
        out["url"] = redact_url(out["url"])
    return out


def redact_url(url: str) -> str:
    """``url`` without its ``user:password@`` part (kept as ``***@``), for responses and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
