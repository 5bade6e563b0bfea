"""embed on Google Cloud (functions-framework): ``embed`` (HTTP: Pub/Sub push or Cloud Scheduler
draining the outbox) and ``embed_event`` (CloudEvent: Eventarc Pub/Sub); see :mod:`shared.platform.gcp`.

204 acknowledges a push; 503 makes Pub/Sub redeliver with the subscription's backoff (then its
dead-letter topic). A job that can never succeed is dead-lettered in the shared store and acknowledged.
"""

from __future__ import annotations

from functions.embed.handling import EMBED_HANDLING
from shared.platform.gcp import JobNotDone, job_functions

__all__ = ["JobNotDone", "embed", "embed_event", "runtime"]

_targets = job_functions("embed", EMBED_HANDLING)
embed = _targets.http
embed_event = _targets.cloud_event
runtime = _targets.runtime
