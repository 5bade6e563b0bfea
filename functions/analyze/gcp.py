"""analyze on Google Cloud (functions-framework): ``analyze`` (HTTP: Pub/Sub push or Cloud Scheduler) and
``analyze_event`` (CloudEvent: Eventarc Pub/Sub); see :mod:`shared.platform.gcp`."""

from __future__ import annotations

from functions.analyze.core import ANALYZE_HANDLING
from shared.platform.gcp import JobNotDone, job_functions

__all__ = ["JobNotDone", "analyze", "analyze_event", "runtime"]

_targets = job_functions("analyze", ANALYZE_HANDLING)
analyze = _targets.http
analyze_event = _targets.cloud_event
runtime = _targets.runtime
