"""Recording a settled job: one counter increment and one histogram observation."""

from __future__ import annotations

from shared.metrics import JOB_SECONDS, JOBS

__all__ = ["record_job", "record_jobs"]


def record_job(kind: str, outcome: str, seconds: float) -> None:
    """One job of ``kind`` settled as ``outcome`` (done, retried, dead) after ``seconds``."""
    JOBS.labels(kind, outcome).inc()
    JOB_SECONDS.labels(kind).observe(seconds)


def record_jobs(kind: str, outcome: str, count: int) -> None:
    """Jobs settled together (a batch), without a time of their own (the batch's is observed once)."""
    if count > 0:
        JOBS.labels(kind, outcome).inc(count)
