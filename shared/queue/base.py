"""The Queue port: at-least-once jobs with visibility timeouts, retries and a dead-letter store."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shared.events import Job

__all__ = ["ClaimedJob", "FailOutcome", "JobSource", "NewJob", "Queue", "backoff_delay"]

FailOutcome = Literal["retry", "dead"]


@dataclass(frozen=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    dedup_key: str | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class ClaimedJob:
    """A job held under a lease; ack/fail with a stale lease (visibility expired) does nothing."""

    job: Job
    lease_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.job.id


def backoff_delay(attempts: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with equal jitter: half fixed, half random, never above the cap.

    Equal rather than full jitter keeps a floor, so a failing dependency is never hammered with
    near-zero delays, while retries from many workers still spread out.
    """
    exp = min(cap_s, base_s * (2 ** max(0, attempts - 1)))
    r = (rng or random).random()
    return exp / 2 + r * exp / 2


class JobSource(Protocol):
    """The consuming side of a queue: claim jobs, settle them, count them. A pull subscription
    (``PubSubPullQueue``) is only this: jobs reach it through its topic, not through it."""

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
