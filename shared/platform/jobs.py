"""What a job-consuming function (embed, enrich, analyze) does with its jobs, apart from the
platform envelopes: settle jobs a platform pushed (:func:`deliver`: an SQS batch, a Pub/Sub push, an
Eventarc event) and drain jobs waiting in the Postgres outbox on a schedule (:func:`drain`).

A function describes itself once as a :class:`JobHandling`: its job kind, how it settles claimed
jobs, how it claims one outbox batch, and optionally what runs after each settled batch (embed's
HNSW index check). Both cloud entry points (:mod:`shared.platform.aws`, :mod:`shared.platform.gcp`)
and every function use these two operations, so delivery and drain exist once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.errors import PoisonError
from shared.events import Job
from shared.metrics.jobs import record_job
from shared.observability import job_span, log_context
from shared.observability.traces import record_failure
from shared.platform.runtime import FunctionRuntime
from shared.queue.base import ClaimedJob, JobAcks
from shared.queue.delivered import DeliveredJobs
from shared.queue.kinds import MalformedPayload, TrackPayload, parse_payload
from shared.services import Services

__all__ = [
    "AfterBatch",
    "Backlog",
    "JobHandling",
    "JobOutcome",
    "ProcessClaimed",
    "deliver",
    "drain",
    "per_job",
    "process_claimed",
    "track_id_of",
]

log = logging.getLogger(__name__)

# How many jobs still wait in the queue that delivered a batch, where the platform can tell.
Backlog = Callable[[], int]


@dataclass(frozen=True)
class JobOutcome:
    claimed: int = 0
    done: int = 0
    retried: int = 0
    dead: int = 0


class ProcessClaimed(Protocol):
    """Settle claimed jobs through ``acks`` (default: the services' outbox); returns an outcome
    dataclass whose integer fields (``claimed`` first) :func:`drain` adds up."""

    def __call__(self, claimed: Sequence[ClaimedJob], services: Services, *, acks: JobAcks | None = None) -> Any: ...


# Runs once a batch is settled, pushed or drained (embed: the HNSW index check), given the backlog
# of the queue that delivered it (None when unknown or for the outbox); what it returns is added
# to the drain's totals. Its failure is logged, never turned into retries of the settled jobs.
AfterBatch = Callable[[Services, Backlog | None], Mapping[str, Any]]


@dataclass(frozen=True)
class JobHandling:
    kind: str
    process: ProcessClaimed
    run_batch: Callable[[Services], Any]  # claims one outbox batch and settles it; outcome as above
    after_batch: AfterBatch | None = None
    done_key: str = "done"  # the drain total counted as done in metrics
    # Report the store's figures (outbox, dead letters, LLM budget) after each pushed batch too, not
    # only after scheduled drains: analyze, whose budget it is and whose batches are seconds long.
    report_store: bool = False


def per_job(
    kind: str, process: ProcessClaimed, run_batch: Callable[[Services], JobOutcome], *, report_store: bool = False
) -> JobHandling:
    """Jobs of ``kind`` each settled on its own by ``process``; the outbox by ``run_batch``."""
    return JobHandling(kind, process, run_batch, report_store=report_store)


def track_id_of(claimed: ClaimedJob) -> int:
    payload = parse_payload(claimed.job.kind, claimed.job.payload)
    if not isinstance(payload, TrackPayload):
        raise MalformedPayload(f"{claimed.job.kind} jobs do not name a track")
    return payload.track_id


def process_claimed(
    claimed: Sequence[ClaimedJob],
    services: Services,
    work: Callable[[ClaimedJob], Any],
    *,
    acks: JobAcks | None = None,
) -> JobOutcome:
    """Run ``work`` per job; ack on success, dead-letter poison, retry anything else with backoff.

    Per job (not per batch) because each job calls out over the network: one slow or failing track
    must not make the others of its batch retry. ``acks`` owns the claimed jobs (default: the
    services' outbox; for platform-pushed jobs, a :class:`~shared.queue.delivered.DeliveredJobs`).
    Jobs the work enqueues always go to the outbox, in the work's own transaction.
    """
    queue: JobAcks = acks if acks is not None else services.queue
    done = retried = dead = 0
    for c in claimed:
        attributes = {"job.id": c.id, "job.kind": c.job.kind, "job.attempt": c.job.attempts}
        started = time.perf_counter()
        with job_span(f"{c.job.kind} job", [c.job], attributes=attributes), log_context(job=c.id, kind=c.job.kind):
            try:
                work(c)
            except PoisonError as exc:
                record_failure(exc)
                queue.fail(c, str(exc), retryable=False)
                dead += 1
                record_job(c.job.kind, "dead", time.perf_counter() - started)
                continue
            except Exception as exc:
                record_failure(exc)
                log.warning("%s job %s failed: %s: %s", c.job.kind, c.id, type(exc).__name__, exc)
                outcome = queue.fail(c, f"{type(exc).__name__}: {exc}", retryable=True)
                dead += outcome == "dead"
                retried += outcome == "retry"
                record_job(c.job.kind, "dead" if outcome == "dead" else "retried", time.perf_counter() - started)
                continue
            queue.ack([c])
        done += 1
        record_job(c.job.kind, "done", time.perf_counter() - started)
    return JobOutcome(len(claimed), done, retried, dead)


def deliver(
    handling: JobHandling, jobs: Sequence[Job], runtime: FunctionRuntime, backlog: Backlog | None = None
) -> DeliveredJobs:
    """Settle platform-pushed jobs; the returned delivery says which to retry and which were
    dead-lettered, for the entry point to map to the platform's answer."""
    claimed = [ClaimedJob(job=job, lease_id=job.id) for job in jobs]

    def record(c: ClaimedJob, error: str) -> None:
        runtime.poison(error, c.job.model_dump(mode="json"), delivery_id=c.id)

    delivery = DeliveredJobs(claimed, record)
    wrong = [c for c in claimed if c.job.kind != handling.kind]
    for c in wrong:
        delivery.fail(c, f"job kind {c.job.kind!r} is not {handling.kind!r}", retryable=False)
    work = [c for c in claimed if c not in wrong]
    if work:
        services = runtime.services
        handling.process(work, services, acks=delivery)
        _after_batch(handling, services, backlog)
    return delivery


def drain(handling: JobHandling, runtime: FunctionRuntime, *, budget_s: float) -> dict[str, Any]:
    """Run outbox batches until the queue is empty or the time budget is spent; then the
    after-batch hook once (a build it starts runs after the drain, not between its batches)."""
    services = runtime.services
    deadline = time.monotonic() + budget_s
    totals: dict[str, Any] = {}
    batches = 0
    while time.monotonic() < deadline:
        outcome = handling.run_batch(services)
        counts = dataclasses.asdict(outcome)  # an empty batch adds zeros: every total is present
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
        if counts["claimed"] == 0:
            break
        batches += 1
    totals["batches"] = batches
    totals.update(_after_batch(handling, services, None))
    return totals


def _after_batch(handling: JobHandling, services: Services, backlog: Backlog | None) -> Mapping[str, Any]:
    if handling.after_batch is None:
        return {}
    try:
        return handling.after_batch(services, backlog)
    except Exception as exc:  # the jobs are settled; the next invocation tries again
        log.warning("after-batch step of %s failed: %s: %s", handling.kind, type(exc).__name__, exc)
        return {}
