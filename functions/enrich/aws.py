"""enrich on AWS Lambda: SQS batches of enrich jobs (ReportBatchItemFailures) and EventBridge Scheduler
ticks that drain jobs waiting in the Postgres outbox; see :mod:`shared.platform.aws`."""

from __future__ import annotations

from functions.enrich.core import ENRICH_HANDLING
from shared.platform.aws import JobNotDone, job_function

__all__ = ["JobNotDone", "handler", "runtime"]

_function = job_function("enrich", ENRICH_HANDLING)
handler = _function.handler
runtime = _function.runtime
logger = _function.logger
metrics = _function.metrics
