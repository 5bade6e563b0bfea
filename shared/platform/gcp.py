"""functions-framework targets for a job-consuming function.

- ``<name>`` (signature ``http``): a Pub/Sub push subscription delivering one job per request, or a
  Cloud Scheduler HTTP job draining the Postgres outbox. 204 acknowledges; 503 makes Pub/Sub
  redeliver with the subscription's backoff (then its dead-letter topic).
- ``<name>_event`` (signature ``cloudevent``): the same job through an Eventarc Pub/Sub trigger;
  returning acknowledges, raising retries.

A job that can never succeed is dead-lettered in the shared store and acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
import functions_framework

from shared.envelopes.errors import EnvelopeError, RequestTooLarge
from shared.envelopes.gcp import (
    is_scheduler_request,
    job_from_pubsub,
    pubsub_from_cloudevent,
    pubsub_from_push,
    schedule_tick_from_scheduler_http,
)
from shared.platform.jobs import JobHandling, deliver, drain
from shared.platform.runtime import FunctionRuntime, payload_digest

__all__ = ["JobFunctions", "JobNotDone", "job_functions"]

log = logging.getLogger(__name__)
_MAX_PUSH_BYTES = 1024 * 1024
_DRAIN_BUDGET_S = 240.0
_RETRY = b'{"error":{"code":"retry","message":"job not done; retry"}}'


class JobNotDone(Exception):
    """Raised from a CloudEvent function so Eventarc redelivers the job."""


@dataclass(frozen=True)
class JobFunctions:
    http: Callable[[flask.Request], Any]
    cloud_event: Callable[[Any], None]
    runtime: FunctionRuntime


def job_functions(name: str, handling: JobHandling) -> JobFunctions:
    """Build and register the ``<name>`` (HTTP) and ``<name>_event`` (CloudEvent) targets."""
    runtime = FunctionRuntime(name, "gcp")

    def http_target(request: flask.Request) -> flask.Response:
        headers = dict(request.headers.items())
        if is_scheduler_request(headers):
            try:
                tick = schedule_tick_from_scheduler_http(headers)
            except EnvelopeError as exc:
                runtime.poison(exc, headers, delivery_id=payload_digest(headers))
                return flask.Response(status=204)
            totals = drain(handling, runtime, budget_s=_DRAIN_BUDGET_S)
            runtime.report_store_metrics()
            log.info("drained %s jobs for %s: %s", name, tick.schedule, totals)
            return flask.jsonify(totals)
        body = request.stream.read(_MAX_PUSH_BYTES + 1)
        try:
            if len(body) > _MAX_PUSH_BYTES:
                raise RequestTooLarge("push body over the size limit")
            job = job_from_pubsub(pubsub_from_push(body))
        except EnvelopeError as exc:
            runtime.poison(exc, body[:_MAX_PUSH_BYTES], delivery_id=payload_digest(body))
            return flask.Response(status=204)  # acknowledged: redelivering it cannot help
        delivery = deliver(handling, [job], runtime, runtime.backlog_of(handling.kind))
        if handling.report_store:
            runtime.report_store_metrics(force=False)
        if job.id in delivery.to_retry:
            return flask.Response(_RETRY, 503, content_type="application/json")
        return flask.Response(status=204)

    def event_target(cloud_event: Any) -> None:
        attributes = dict(cloud_event.get_attributes())
        try:
            job = job_from_pubsub(pubsub_from_cloudevent(attributes, cloud_event.get_data()))
        except EnvelopeError as exc:
            runtime.poison(
                exc, {"attributes": attributes, "data": cloud_event.get_data()}, delivery_id=str(attributes.get("id"))
            )
            return
        delivery = deliver(handling, [job], runtime, runtime.backlog_of(handling.kind))
        if job.id in delivery.to_retry:
            raise JobNotDone(f"{name} job {job.id} not done; Eventarc will redeliver")

    # functions-framework registers a target's signature type under the function's own name.
    http_target.__name__ = http_target.__qualname__ = name
    event_target.__name__ = event_target.__qualname__ = f"{name}_event"
    return JobFunctions(
        functions_framework.http(runtime.relaying(http_target)),
        functions_framework.cloud_event(runtime.relaying(event_target)),
        runtime,
    )
