"""scrape on Google Cloud (functions-framework).

- ``scrape`` (signature ``http``): a Cloud Scheduler HTTP job (``X-CloudScheduler-*`` headers).
- ``scrape_event`` (signature ``cloudevent``): a Cloud Scheduler Pub/Sub message through Eventarc.

A tick is scraped at most once (idempotency record keyed by schedule and fire time). A request
that is not a schedule tick is dead-lettered in the shared store and acknowledged; a transient
failure (database down) answers 500 / raises, and the scheduler retries.
"""

from __future__ import annotations

import logging
from typing import Any

import flask
import functions_framework

from functions.scrape.core import handle_tick
from shared.envelopes.errors import EnvelopeError, UnsupportedEvent
from shared.envelopes.gcp import (
    is_scheduler_request,
    pubsub_from_cloudevent,
    schedule_tick_from_pubsub,
    schedule_tick_from_scheduler_http,
)
from shared.platform.runtime import FunctionRuntime, payload_digest

__all__ = ["runtime", "scrape", "scrape_event"]

log = logging.getLogger(__name__)
runtime = FunctionRuntime("scrape", "gcp")


@functions_framework.http
@runtime.relaying
def scrape(request: flask.Request) -> flask.Response:
    headers = dict(request.headers.items())
    try:
        if not is_scheduler_request(headers):
            raise UnsupportedEvent("scrape answers Cloud Scheduler requests only")
        tick = schedule_tick_from_scheduler_http(headers)
    except EnvelopeError as exc:
        runtime.poison(exc, headers, delivery_id=payload_digest(headers))
        return flask.Response(status=204)
    outcome = handle_tick(tick, runtime.services)
    log.info("scrape %s: %s", tick.schedule, "replayed" if outcome.replayed else outcome.result.status)
    return flask.jsonify(outcome.as_json())


@functions_framework.cloud_event
@runtime.relaying
def scrape_event(cloud_event: Any) -> None:
    attributes = dict(cloud_event.get_attributes())
    try:
        tick = schedule_tick_from_pubsub(pubsub_from_cloudevent(attributes, cloud_event.get_data()))
    except EnvelopeError as exc:
        runtime.poison(
            exc, {"attributes": attributes, "data": cloud_event.get_data()}, delivery_id=str(attributes.get("id"))
        )
        return
    outcome = handle_tick(tick, runtime.services)
    log.info("scrape %s: %s", tick.schedule, "replayed" if outcome.replayed else outcome.result.status)
