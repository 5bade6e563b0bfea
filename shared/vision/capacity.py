"""The GPU cap and the admission check producers ask before queueing more images.

Capacity is fixed by configuration (Terraform): instances x batches in flight x batch size images
are worked on at once, and the fleet drains about instances x expected img/s. When the backlog
would take longer than the target latency to drain, new work is *deferred* (queued invisible until
the backlog should have room) instead of scaling GPUs or overloading the workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from shared.config import Settings

__all__ = ["Admission", "Capacity", "admission", "queue_lag_s"]


@dataclass(frozen=True)
class Capacity:
    instances: int
    max_batch: int
    max_in_flight: int
    expected_img_per_s: float
    target_latency_s: float

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
    def drain_img_per_s(self) -> float:
        return self.instances * self.expected_img_per_s

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

    def as_dict(self) -> dict[str, Any]:
        return {"admit": self.admit, "backlog": self.backlog, "max_backlog": self.max_backlog, "defer_s": self.defer_s}


def admission(
    conn: psycopg.Connection[Any], capacity: Capacity, kind: str, *, incoming: int = 1, queued_elsewhere: int = 0
) -> Admission:
    """Admit ``incoming`` new jobs of ``kind`` now, or say how long to defer them.

    The backlog counts every job queued in Postgres, deferred ones included, so each deferral
    lands behind the work deferred before it, plus ``queued_elsewhere``: what already waits in the
    cloud queue the relay forwards to (SQS reports it; see ``Services.remote_backlog``).
    """
    row = conn.execute("SELECT count(*) FROM jobs WHERE kind = %s", (kind,)).fetchone()
    backlog = (int(row[0]) if row else 0) + max(0, queued_elsewhere)
    limit = capacity.max_backlog
    if capacity.instances > 0 and backlog + incoming <= limit:
        return Admission(True, backlog, limit, 0.0)
    rate = capacity.drain_img_per_s
    # Hold it back until the excess over the limit should have drained; a fleet capped at zero
    # (a dev environment) defers by the target latency each time.
    excess = backlog + incoming - limit
    defer = (excess / rate) if rate > 0 and capacity.instances > 0 else capacity.target_latency_s
    return Admission(False, backlog, limit, round(min(max(defer, 1.0), 3600.0), 3))


def queue_lag_s(conn: psycopg.Connection[Any], kind: str) -> float:
    """Age of the oldest job of ``kind`` that is waiting (visible now), in seconds; 0 when none waits."""
    row = conn.execute(
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM jobs"
        " WHERE kind = %s AND visible_at <= now()",
        (kind,),
    ).fetchone()
    return float(row[0]) if row else 0.0
