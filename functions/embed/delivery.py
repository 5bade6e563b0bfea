"""Glue between platform-delivered embed jobs and the unchanged embed core.

The core acks and fails through the Queue port; for jobs a platform pushed (SQS batch, Pub/Sub
push, Eventarc) that port is :class:`~shared.queue.delivered.DeliveredJobs`, whose remembered
outcome the entry point maps to the platform's answer. Jobs that sit in the Postgres outbox are
drained on a schedule with the core's own ``run_embed_batch``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from functions.embed.core import EMBED_JOB, embed_claimed, run_embed_batch
from functions.embed.index import IndexKeeper
from shared.entry import FunctionRuntime
from shared.events import Job
from shared.jobentry.handling import JobHandling
from shared.queue.base import ClaimedJob
from shared.queue.delivered import DeliveredJobs
from shared.services import Services

__all__ = ["EMBED_HANDLING", "drain_outbox", "embed_delivered"]

log = logging.getLogger(__name__)

_prepared: list[tuple[Services, IndexKeeper]] = []
_prepare_lock = threading.Lock()


def _prepare(runtime: FunctionRuntime) -> IndexKeeper:
    """Load the model once per process (not per delivery); returns the process's index keeper."""
    services = runtime.services
    if _prepared and _prepared[0][0] is services:
        return _prepared[0][1]
    with _prepare_lock:
        if not (_prepared and _prepared[0][0] is services):
            _ = services.embedder
            _prepared[:] = [(services, IndexKeeper(services))]
    return _prepared[0][1]


def embed_delivered(
    jobs: Sequence[Job], runtime: FunctionRuntime, *, source_backlog: Callable[[], int] | None = None
) -> DeliveredJobs:
    """Embed pushed jobs in one batch; returns which to retry and which were dead-lettered.

    ``source_backlog`` tells how many embed jobs still wait in the queue that delivered these, so a
    bulk load builds its HNSW index after the backlog, not under it (see functions.embed.index).
    """
    claimed = [ClaimedJob(job=job, lease_id=job.id) for job in jobs]

    def record(c: ClaimedJob, error: str) -> None:
        runtime.poison(error, c.job.model_dump(mode="json"), delivery_id=c.id)

    delivery = DeliveredJobs(claimed, record)
    wrong_kind = [c for c in claimed if c.job.kind != EMBED_JOB]
    for c in wrong_kind:
        delivery.fail(c, f"job kind {c.job.kind!r} is not {EMBED_JOB!r}", retryable=False)
    work = [c for c in claimed if c not in wrong_kind]
    if work:
        keeper = _prepare(runtime)
        if source_backlog is not None:
            keeper.backlog_elsewhere = source_backlog
        embed_claimed(work, dataclasses.replace(runtime.services, queue=delivery))  # type: ignore[arg-type]
        _index_tick(keeper)  # builds the HNSW index once the model has vectors and no bulk backlog waits
    return delivery


def drain_outbox(runtime: FunctionRuntime, *, budget_s: float) -> dict[str, Any]:
    """Embed jobs queued in Postgres until the queue is empty or the time budget is spent."""
    keeper = _prepare(runtime)
    deadline = time.monotonic() + budget_s
    totals: dict[str, Any] = {"claimed": 0, "embedded": 0, "skipped": 0, "failed": 0, "batches": 0}
    while time.monotonic() < deadline:
        outcome = run_embed_batch(runtime.services)
        if outcome.claimed == 0:
            break
        totals["batches"] += 1
        for name in ("claimed", "embedded", "skipped", "failed"):
            totals[name] += getattr(outcome, name)
    totals["index"] = _index_tick(keeper)  # the build, when due, runs after the drain, not inside it
    return totals


def _index_tick(keeper: IndexKeeper) -> str:
    """The index check after the jobs are settled: its failure must not turn them into retries."""
    try:
        return keeper.tick().value
    except Exception as exc:  # search keeps its exact scan; the next invocation tries again
        log.warning("HNSW index check failed: %s: %s", type(exc).__name__, exc)
        return "error"


def _deliver(jobs: Sequence[Job], runtime: FunctionRuntime, backlog: Callable[[], int] | None) -> DeliveredJobs:
    return embed_delivered(jobs, runtime, source_backlog=backlog)


def _drain(runtime: FunctionRuntime, budget_s: float) -> dict[str, Any]:
    return drain_outbox(runtime, budget_s=budget_s)


# For the cloud entry points (shared.jobentry): a pushed batch is embedded in one model call, and the
# outbox drained with the core's own batches; each followed by the index check.
EMBED_HANDLING = JobHandling(_deliver, _drain, done_key="embedded")
