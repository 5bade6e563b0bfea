"""enrich on Google Cloud (functions-framework): ``enrich`` (HTTP: Pub/Sub push or Cloud Scheduler) and
``enrich_event`` (CloudEvent: Eventarc Pub/Sub); see :mod:`shared.platform.gcp`."""

from __future__ import annotations

from functions.enrich.core import ENRICH_HANDLING
from shared.platform.gcp import JobNotDone, job_functions

__all__ = ["JobNotDone", "enrich", "enrich_event", "runtime"]

_targets = job_functions("enrich", ENRICH_HANDLING)
enrich = _targets.http
enrich_event = _targets.cloud_event
runtime = _targets.runtime
