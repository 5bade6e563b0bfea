"""analyze on AWS Lambda: SQS batches of analyze jobs (ReportBatchItemFailures) and EventBridge Scheduler
ticks that drain jobs waiting in the Postgres outbox; see :mod:`shared.jobentry.aws`."""

from __future__ import annotations

from functions.analyze.core import analyze_claimed, run_analyze_batch
from shared.jobentry.aws import JobNotDone, job_function
from shared.jobentry.handling import per_job
from shared.queue.kinds import ANALYZE_JOB

__all__ = ["JobNotDone", "handler", "runtime"]

_function = job_function("analyze", ANALYZE_JOB, per_job(ANALYZE_JOB, analyze_claimed, run_analyze_batch))
handler = _function.handler
runtime = _function.runtime
logger = _function.logger
metrics = _function.metrics
