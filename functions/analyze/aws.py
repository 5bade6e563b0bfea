"""analyze on AWS Lambda: SQS batches of analyze jobs (ReportBatchItemFailures) and EventBridge Scheduler
ticks that drain jobs waiting in the Postgres outbox; see :mod:`shared.platform.aws`."""

from __future__ import annotations

from functions.analyze.core import ANALYZE_HANDLING
from shared.platform.aws import JobNotDone, job_function

__all__ = ["JobNotDone", "handler", "runtime"]

_function = job_function("analyze", ANALYZE_HANDLING)
handler = _function.handler
runtime = _function.runtime
logger = _function.logger
metrics = _function.metrics
