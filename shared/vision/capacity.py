"""The GPU cap and the admission check producers ask before queueing more images.

Capacity is fixed by configuration (Terraform): instances x batches in flight x batch size images
are worked on at once, and the fleet drains about instances x the rate one instance drains: the rate
its running pipeline processes measured while a backlog kept them busy (``gpu_workers``), or until
they have, the configured ``CONTENTFN_GPU_EXPECTED_IMG_PER_S``. When the backlog
would take longer than the target latency to drain, new work is *deferred* (queued invisible until
the backlog should have room) instead of scaling GPUs or overloading the workers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg

from shared.config import Settings

__all__ = [
    "Admission",
    "Capacity",
    "admission",
    "forget_worker",
    "measured_instance_rate",
    "queue_lag_s",
    "report_worker",
]

# A worker row older than this no longer counts (its process stopped or lost the database).
_FRESH_S = 60.0


@dataclass(frozen=True)
class Capacity:
    instances: int
    max_batch: int
    max_in_flight: int
    expected_img_per_s: float
    target_latency_s: float
    measured_img_per_s: float | None = None  # per instance, reported by running workers

    @classmethod
    def from_settings(cls, s: Settings) -> Capacity:
        return cls(
            s.gpu_max_instances,
            s.gpu_max_batch,
            s.gpu_max_in_flight,
            s.gpu_expected_img_per_s,
            s.gpu_target_latency_s,
        )

    @property
    def in_flight_images(self) -> int:
        """Images held at once by one instance (decoding, queued for the GPU, being written)."""
        return self.max_batch * self.max_in_flight

    @property
    def cap(self) -> int:
        """Images in progress across the whole fleet at most."""
        return self.instances * self.in_flight_images

    @property
    def per_instance_img_per_s(self) -> float:
        """What one instance drains: measured by the running workers when they have told, else configured."""
        return self.measured_img_per_s if self.measured_img_per_s else self.expected_img_per_s

    @property
    def drain_img_per_s(self) -> float:
        return self.instances * self.per_instance_img_per_s

    @property
    def max_backlog(self) -> int:
        """The backlog the fleet drains within the target latency."""
        return max(self.cap, int(self.drain_img_per_s * self.target_latency_s))


@dataclass(frozen=True)
class Admission:
    admit: bool
    backlog: int
    max_backlog: int
    defer_s: float  # 0 when admitted; else how long to hold new work back
    drain_img_per_s: float = 0.0
    rate: str = "configured"  # or "measured"

    def as_dict(self) -> dict[str, Any]:
        return {
            "admit": self.admit,
            "backlog": self.backlog,
            "max_backlog": self.max_backlog,
            "defer_s": self.defer_s,
            "drain_img_per_s": round(self.drain_img_per_s, 2),
            "rate": self.rate,
        }


def admission(
    conn: psycopg.Connection[Any], capacity: Capacity, kind: str, *, incoming: int = 1, queued_elsewhere: int = 0
) -> Admission:
    """Admit ``incoming`` new jobs of ``kind`` now, or say how long to defer them.

    The backlog counts every job queued in Postgres, deferred ones included, so each deferral
    lands behind the work deferred before it, plus ``queued_elsewhere``: what already waits in the
    cloud queue the relay forwards to (SQS reports it; see ``Services.remote_backlog``).
    """
    measured = measured_instance_rate(conn)
    if measured:
        capacity = replace(capacity, measured_img_per_s=measured)
    source = "measured" if measured else "configured"
    row = conn.execute("SELECT count(*) FROM jobs WHERE kind = %s", (kind,)).fetchone()
    backlog = (int(row[0]) if row else 0) + max(0, queued_elsewhere)
    limit = capacity.max_backlog
    if capacity.instances > 0 and backlog + incoming <= limit:
        return Admission(True, backlog, limit, 0.0, capacity.drain_img_per_s, source)
    rate = capacity.drain_img_per_s
    # Hold it back until the excess over the limit should have drained; a fleet capped at zero
    # (a dev environment) defers by the target latency each time.
    excess = backlog + incoming - limit
    defer = (excess / rate) if rate > 0 and capacity.instances > 0 else capacity.target_latency_s
    return Admission(False, backlog, limit, round(min(max(defer, 1.0), 3600.0), 3), rate, source)


def measured_instance_rate(conn: psycopg.Connection[Any], *, fresh_s: float = _FRESH_S) -> float | None:
    """Images per second one GPU instance drains, as its running pipeline processes measured it:
    the processes of one host add up, hosts are averaged. None when no fresh worker has a rate."""
    row = conn.execute(
        """
        SELECT avg(rate) FROM (
            SELECT sum(img_per_s) AS rate FROM gpu_workers
            WHERE updated_at > now() - make_interval(secs => %s) AND img_per_s IS NOT NULL
            GROUP BY host
        ) per_host
        """,
        (fresh_s,),
    ).fetchone()
    return float(row[0]) if row and row[0] is not None and row[0] > 0 else None


def report_worker(
    conn: psycopg.Connection[Any],
    worker_id: str,
    *,
    host: str,
    provider: str,
    model: str,
    max_batch: int,
    img_per_s: float | None,
    busy_s: float,
) -> None:
    """Upsert this pipeline process's row; rows nobody refreshed for a day are removed on the way."""
    conn.execute(
        """
        INSERT INTO gpu_workers (id, host, provider, model, max_batch, img_per_s, busy_s)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO UPDATE SET img_per_s = excluded.img_per_s, busy_s = excluded.busy_s,
            provider = excluded.provider, model = excluded.model, max_batch = excluded.max_batch,
            updated_at = now()
        """,
        (worker_id, host, provider, model, max_batch, img_per_s, busy_s),
    )
    conn.execute("DELETE FROM gpu_workers WHERE updated_at < now() - interval '1 day'")


def forget_worker(conn: psycopg.Connection[Any], worker_id: str) -> None:
    conn.execute("DELETE FROM gpu_workers WHERE id = %s", (worker_id,))


def queue_lag_s(conn: psycopg.Connection[Any], kind: str) -> float:
    """Age of the oldest job of ``kind`` that is waiting (visible now), in seconds; 0 when none waits."""
    row = conn.execute(
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM jobs"
        " WHERE kind = %s AND visible_at <= now()",
        (kind,),
    ).fetchone()
    return float(row[0]) if row else 0.0
