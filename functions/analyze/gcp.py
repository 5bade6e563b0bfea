"""analyze on Google Cloud (functions-framework): ``analyze`` (HTTP: Pub/Sub push or Cloud Scheduler) and
``analyze_event`` (CloudEvent: Eventarc Pub/Sub); see :mod:`shared.jobentry.gcp`."""

from __future__ import annotations

from functions.analyze.core import analyze_claimed, run_analyze_batch
from shared.jobentry.gcp import JobNotDone, job_functions
from shared.jobentry.handling import per_job
from shared.queue.kinds import ANALYZE_JOB

__all__ = ["JobNotDone", "analyze", "analyze_event", "runtime"]

_targets = job_functions("analyze", ANALYZE_JOB, per_job(ANALYZE_JOB, analyze_claimed, run_analyze_batch))
analyze = _targets.http
analyze_event = _targets.cloud_event
runtime = _targets.runtime
