"""The Queue port: at-least-once jobs with visibility timeouts, retries and a dead-letter store."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shared.events import Job
from shared.observability.traces import trace_context

__all__ = [
    "ClaimedJob",
    "FailOutcome",
    "JobAcks",
    "JobSource",
    "NewJob",
    "Outbox",
    "Queue",
    "backoff_delay",
    "trace_attributes",
]

FailOutcome = Literal["retry", "dead"]


@dataclass(frozen=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    dedup_key: str | None = None
    delay_s: float = 0.0
    # Trace context to carry (a relayed job keeps its own); unset: the queue takes the current span's.
    traceparent: str | None = None
    tracestate: str | None = None


@dataclass(frozen=True)
class ClaimedJob:
    """A job held under a lease; ack/fail with a stale lease (visibility expired) does nothing."""

    job: Job
    lease_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.job.id


def trace_attributes(job: NewJob) -> dict[str, str]:
    """The message attributes that carry a job's trace context (its own, else the current span's)."""
    parent, state = (job.traceparent, job.tracestate) if job.traceparent else trace_context()
    attrs = {"traceparent": parent} if parent else {}
    if parent and state:
        attrs["tracestate"] = state
    return attrs


def backoff_delay(attempts: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with equal jitter: half fixed, half random, never above the cap.

    Equal rather than full jitter keeps a floor, so a failing dependency is never hammered with
    near-zero delays, while retries from many workers still spread out.
    """
    exp = min(cap_s, base_s * (2 ** max(0, attempts - 1)))
    r = (rng or random).random()
    return exp / 2 + r * exp / 2


class JobSource(Protocol):
    """The consuming half of the Queue port: what a worker that only takes jobs needs (the GPU
    worker over the Postgres jobs table, SQS or a Pub/Sub subscription)."""

    def claim(self, kind: str, limit: int, *, visibility_s: float | None = None) -> list[ClaimedJob]: ...

    def ack(self, claimed: Sequence[ClaimedJob]) -> int: ...

    def fail(self, claimed: ClaimedJob, error: str, *, retryable: bool) -> FailOutcome: ...

    def release(self, claimed: Sequence[ClaimedJob]) -> int:
        """Give jobs back at once without counting the attempt (graceful shutdown)."""
        ...

    def depth(self, kind: str | None = None) -> int: ...

    def dead_count(self, kind: str | None = None) -> int: ...


class Queue(JobSource, Protocol):
    """A queue that jobs are both put on and taken from (the Postgres jobs table, SQS)."""

    def enqueue_many(self, jobs: Sequence[NewJob]) -> int:
        """Enqueue jobs; a job whose dedup key is already queued is dropped. Returns how many were added."""
        ...


class JobAcks(Protocol):
    """What a job core settles claimed jobs through: the outbox that lent them, or the record of a
    platform's push (:class:`~shared.queue.delivered.DeliveredJobs`). ``conn`` lets a transactional
    queue ack inside the transaction that wrote the job's results; a push record only notes it."""

    def ack(self, claimed: Sequence[ClaimedJob], *, conn: Any = None) -> int: ...

    def fail(self, claimed: ClaimedJob, error: str, *, retryable: bool) -> FailOutcome: ...

    def release(self, claimed: Sequence[ClaimedJob]) -> int: ...


class Outbox(Queue, Protocol):
    """The Queue every function holds (the Postgres jobs table): its writes join the caller's
    transaction, so a job is queued (or acked) exactly when the work it follows commits."""

    def enqueue_many(self, jobs: Sequence[NewJob], *, conn: Any = None) -> int: ...

    def enqueue_track_jobs(
        self, kinds: Sequence[str], track_ids: Sequence[int], content_hashes: Sequence[str], *, conn: Any
    ) -> int:
        """One job of each kind per (track, content hash), inside the caller's transaction."""
        ...

    def ack(self, claimed: Sequence[ClaimedJob], *, conn: Any = None) -> int: ...

    def dead_letter(
        self, kind: str, payload: dict[str, Any], error: str, *, dedup_key: str | None = None, attempts: int = 1
    ) -> None:
        """Record poison input that never was a queued job (e.g. a refused upload event); ``attempts``
        is how often it was tried (more than one for an event retried until given up)."""
        ...

    def has_ready(self, kind: str) -> bool: ...

    def backlog(self, kind: str, cap: int) -> int: ...

    def dead_jobs(self, limit: int = 20) -> list[dict[str, Any]]: ...
