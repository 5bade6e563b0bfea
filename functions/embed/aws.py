"""embed on AWS Lambda: SQS batches of embed jobs (ReportBatchItemFailures), and EventBridge
Scheduler ticks that drain jobs waiting in the Postgres outbox; see :mod:`shared.platform.aws`.

A batch is embedded in one go (one model call, one transaction), then each record's outcome is
reported: transient failures and poison records appear in ``batchItemFailures``. The depth of the
SQS queue the batch came from tells the index keeper whether a bulk load is still arriving.
"""

from __future__ import annotations

from functions.embed.handling import EMBED_HANDLING
from shared.platform.aws import JobNotDone, job_function

__all__ = ["JobNotDone", "handler", "runtime"]

_function = job_function("embed", EMBED_HANDLING)
handler = _function.handler
runtime = _function.runtime
logger = _function.logger
metrics = _function.metrics
