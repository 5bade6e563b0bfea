"""enrich on AWS Lambda: SQS batches of enrich jobs (ReportBatchItemFailures) and EventBridge Scheduler
ticks that drain jobs waiting in the Postgres outbox; see :mod:`shared.jobentry.aws`."""

from __future__ import annotations

from functions.enrich.core import enrich_claimed, run_enrich_batch
from shared.jobentry.aws import JobNotDone, job_function
from shared.jobentry.handling import per_job
from shared.queue.kinds import ENRICH_JOB

__all__ = ["JobNotDone", "handler", "runtime"]

_function = job_function("enrich", ENRICH_JOB, per_job(ENRICH_JOB, enrich_claimed, run_enrich_batch))
handler = _function.handler
runtime = _function.runtime
logger = _function.logger
metrics = _function.metrics
