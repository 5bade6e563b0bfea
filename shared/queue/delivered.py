"""The Queue port for jobs a platform pushed to a function (SQS batch, Pub/Sub push, Eventarc).

The platform, not us, owns those messages: "ack" and "fail" cannot act at once; they are
remembered, and the entry point turns them into the platform's answer afterwards (a
``batchItemFailures`` entry, an HTTP status). The job cores run unchanged over this port.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shared.queue.base import ClaimedJob, FailOutcome, NewJob

__all__ = ["DeliveredJobs"]

PoisonRecorder = Callable[[ClaimedJob, str], None]


class DeliveredJobs:
    """Outcome of one delivery. A job is done only if acked and not failed afterwards (a failed
    commit after the ack in the same transaction reports a failure, which wins)."""

    def __init__(self, claimed: Sequence[ClaimedJob], record_poison: PoisonRecorder) -> None:
        self.claimed = list(claimed)
        self._record_poison = record_poison
        self._acked: set[str] = set()
        self._retry: set[str] = set()
        self._dead: set[str] = set()

    # -- the Queue port as a job core uses it --------------------------------------------------
    def ack(self, claimed: Sequence[ClaimedJob], *, conn: Any = None) -> int:
        self._acked.update(c.id for c in claimed)
        return len(claimed)

    def fail(self, claimed: ClaimedJob, error: str, *, retryable: bool) -> FailOutcome:
        if retryable:
            self._retry.add(claimed.id)
            return "retry"
        self._record_poison(claimed, error)
        self._dead.add(claimed.id)
        return "dead"

    def release(self, claimed: Sequence[ClaimedJob]) -> int:
        self._retry.update(c.id for c in claimed)
        return len(claimed)

    def enqueue_many(self, jobs: Sequence[NewJob], **_: Any) -> int:
        raise NotImplementedError("a pushed delivery cannot enqueue; use the function's outbound queue")

    # -- what the entry point maps to the platform ---------------------------------------------
    @property
    def dead(self) -> set[str]:
        """Dead-lettered in the shared store."""
        return set(self._dead)

    @property
    def to_retry(self) -> set[str]:
        """Not finished: failed transiently, released, or never acked (the safe default)."""
        done = self._acked - self._retry - self._dead
        return {c.id for c in self.claimed} - done - self._dead
