"""enrich on Google Cloud (functions-framework): ``enrich`` (HTTP: Pub/Sub push or Cloud Scheduler) and
``enrich_event`` (CloudEvent: Eventarc Pub/Sub); see :mod:`shared.jobentry.gcp`."""

from __future__ import annotations

from functions.enrich.core import enrich_claimed, run_enrich_batch
from shared.jobentry.gcp import JobNotDone, job_functions
from shared.jobentry.handling import per_job
from shared.queue.kinds import ENRICH_JOB

__all__ = ["JobNotDone", "enrich", "enrich_event", "runtime"]

_targets = job_functions("enrich", ENRICH_JOB, per_job(ENRICH_JOB, enrich_claimed, run_enrich_batch))
enrich = _targets.http
enrich_event = _targets.cloud_event
runtime = _targets.runtime
