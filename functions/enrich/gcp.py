"""enrich on Google Cloud (functions-framework): enrich jobs (features and metadata per track).

- ``enrich`` (signature ``http``): a Pub/Sub push subscription delivering one job per request, or a
  Cloud Scheduler HTTP job draining the Postgres outbox. 204 acknowledges; 503 makes Pub/Sub
  redeliver with the subscription's backoff (then its dead-letter topic).
- ``enrich_event`` (signature ``cloudevent``): the same job through an Eventarc Pub/Sub trigger;
  returning acknowledges, raising retries.

A job that can never succeed is dead-lettered in the shared store and acknowledged.
"""

from __future__ import annotations

import logging
from typing import Any

import flask
import functions_framework

from functions.enrich.core import ENRICH_JOB, enrich_claimed, run_enrich_batch
from shared.entry import FunctionRuntime, payload_digest
from shared.envelopes.errors import EnvelopeError, RequestTooLarge
from shared.envelopes.gcp import (
    is_scheduler_request,
    job_from_pubsub,
    pubsub_from_cloudevent,
    pubsub_from_push,
    schedule_tick_from_scheduler_http,
)
from shared.intel.jobs import deliver, drain

__all__ = ["JobNotDone", "enrich", "enrich_event", "runtime"]

log = logging.getLogger(__name__)
runtime = FunctionRuntime("enrich", "gcp")
_MAX_PUSH_BYTES = 1024 * 1024
_DRAIN_BUDGET_S = 240.0
_RETRY = b'{"error":{"code":"retry","message":"job not done; retry"}}'


class JobNotDone(Exception):
    """Raised from a CloudEvent function so Eventarc redelivers the job."""


@functions_framework.http
def enrich(request: flask.Request) -> flask.Response:
    headers = dict(request.headers.items())
    if is_scheduler_request(headers):
        try:
            tick = schedule_tick_from_scheduler_http(headers)
        except EnvelopeError as exc:
            runtime.poison(exc, headers, delivery_id=payload_digest(headers))
            return flask.Response(status=204)
        totals = drain(lambda: run_enrich_batch(runtime.services), budget_s=_DRAIN_BUDGET_S)
        log.info("drained enrich jobs for %s: %s", tick.schedule, totals)
        return flask.jsonify(totals)
    body = request.stream.read(_MAX_PUSH_BYTES + 1)
    try:
        if len(body) > _MAX_PUSH_BYTES:
            raise RequestTooLarge("push body over the size limit")
        job = job_from_pubsub(pubsub_from_push(body))
    except EnvelopeError as exc:
        runtime.poison(exc, body[:_MAX_PUSH_BYTES], delivery_id=payload_digest(body))
        return flask.Response(status=204)  # acknowledged: redelivering it cannot help
    delivery = deliver([job], runtime, ENRICH_JOB, enrich_claimed)
    if job.id in delivery.to_retry:
        return flask.Response(_RETRY, 503, content_type="application/json")
    return flask.Response(status=204)


@functions_framework.cloud_event
def enrich_event(cloud_event: Any) -> None:
    attributes = dict(cloud_event.get_attributes())
    try:
        job = job_from_pubsub(pubsub_from_cloudevent(attributes, cloud_event.get_data()))
    except EnvelopeError as exc:
        runtime.poison(
            exc, {"attributes": attributes, "data": cloud_event.get_data()}, delivery_id=str(attributes.get("id"))
        )
        return
    delivery = deliver([job], runtime, ENRICH_JOB, enrich_claimed)
    if job.id in delivery.to_retry:
        raise JobNotDone(f"enrich job {job.id} not done; Eventarc will redeliver")
