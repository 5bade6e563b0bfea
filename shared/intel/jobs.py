"""Job plumbing shared by the enrich and analyze cores: process claimed jobs one by one over the
Queue port (Postgres outbox or a platform delivery), and drain the outbox within a time budget.

Per-job processing (not per-batch) because each job calls out over the network: one slow or failing
track must not make the others of its batch retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.entry import FunctionRuntime
from shared.errors import PoisonError
from shared.events import Job
from shared.queue.base import ClaimedJob
from shared.queue.delivered import DeliveredJobs
from shared.queue.kinds import MalformedPayload, TrackPayload, parse_payload
from shared.services import Services

__all__ = ["JobOutcome", "deliver", "drain", "process_claimed", "track_id_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    claimed: int = 0
    done: int = 0
    retried: int = 0
    dead: int = 0


def track_id_of(claimed: ClaimedJob) -> int:
    payload = parse_payload(claimed.job.kind, claimed.job.payload)
    if not isinstance(payload, TrackPayload):
        raise MalformedPayload(f"{claimed.job.kind} jobs do not name a track")
    return payload.track_id


def process_claimed(
    claimed: Sequence[ClaimedJob], services: Services, work: Callable[[ClaimedJob], Any], *, acks: Any = None
) -> JobOutcome:
    """Run ``work`` per job; ack on success, dead-letter poison, retry anything else with backoff.

    ``acks`` is the Queue port that owns the claimed jobs (default: the services' outbox queue; for
    platform-pushed jobs, a :class:`~shared.queue.delivered.DeliveredJobs`). Jobs the work enqueues
    always go to the outbox, in the work's own transaction.
    """
    queue = acks if acks is not None else services.queue
    done = retried = dead = 0
    for c in claimed:
        try:
            work(c)
        except PoisonError as exc:
            queue.fail(c, str(exc), retryable=False)
            dead += 1
            continue
        except Exception as exc:
            log.warning("%s job %s failed: %s: %s", c.job.kind, c.id, type(exc).__name__, exc)
            outcome = queue.fail(c, f"{type(exc).__name__}: {exc}", retryable=True)
            dead += outcome == "dead"
            retried += outcome == "retry"
            continue
        queue.ack([c])
        done += 1
    return JobOutcome(len(claimed), done, retried, dead)


def drain(run_batch: Callable[[], JobOutcome], *, budget_s: float) -> dict[str, int]:
    """Run batches until the queue is empty or the time budget is spent."""
    deadline = time.monotonic() + budget_s
    totals = {"claimed": 0, "done": 0, "retried": 0, "dead": 0, "batches": 0}
    while time.monotonic() < deadline:
        outcome = run_batch()
        if outcome.claimed == 0:
            break
        totals["batches"] += 1
        for name in ("claimed", "done", "retried", "dead"):
            totals[name] += getattr(outcome, name)
    return totals


ProcessClaimed = Callable[..., JobOutcome]


def deliver(jobs: Sequence[Job], runtime: FunctionRuntime, kind: str, process: ProcessClaimed) -> DeliveredJobs:
    """Process platform-pushed jobs (SQS batch, Pub/Sub push, Eventarc); the returned delivery says
    which to retry and which were dead-lettered, for the entry point to map to the platform."""
    claimed = [ClaimedJob(job=job, lease_id=job.id) for job in jobs]

    def record(c: ClaimedJob, error: str) -> None:
        runtime.poison(error, c.job.model_dump(mode="json"), delivery_id=c.id)

    delivery = DeliveredJobs(claimed, record)
    wrong = [c for c in claimed if c.job.kind != kind]
    for c in wrong:
        delivery.fail(c, f"job kind {c.job.kind!r} is not {kind!r}", retryable=False)
    work = [c for c in claimed if c not in wrong]
    if work:
        process(work, runtime.services, acks=delivery)
    return delivery
