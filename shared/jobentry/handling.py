"""What a job-consuming function does with its jobs, apart from the platform plumbing.

Two operations: settle jobs a platform pushed (an SQS batch, a Pub/Sub push, an Eventarc event), and
drain jobs waiting in the Postgres outbox on a schedule. Most functions settle pushed jobs one by
one (:func:`per_job`); embed settles a whole batch with one model call and builds its search index
after it, so it brings its own pair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.entry import FunctionRuntime
from shared.events import Job
from shared.intel.jobs import JobOutcome, ProcessClaimed, deliver, drain
from shared.queue.delivered import DeliveredJobs
from shared.services import Services

__all__ = ["Backlog", "JobHandling", "per_job"]

# How many jobs still wait in the queue that delivered a batch, where the platform can tell.
Backlog = Callable[[], int]


@dataclass(frozen=True)
class JobHandling:
    deliver: Callable[[Sequence[Job], FunctionRuntime, Backlog | None], DeliveredJobs]
    drain: Callable[[FunctionRuntime, float], dict[str, Any]]
    done_key: str = "done"  # the drain total counted as done in metrics


def per_job(kind: str, process: ProcessClaimed, run_batch: Callable[[Services], JobOutcome]) -> JobHandling:
    """Pushed jobs of ``kind`` processed each on its own by ``process``; the outbox by ``run_batch``."""

    def deliver_jobs(jobs: Sequence[Job], runtime: FunctionRuntime, backlog: Backlog | None) -> DeliveredJobs:
        return deliver(jobs, runtime, kind, process)

    def drain_outbox(runtime: FunctionRuntime, budget_s: float) -> dict[str, Any]:
        return drain(lambda: run_batch(runtime.services), budget_s=budget_s)

    return JobHandling(deliver_jobs, drain_outbox)
