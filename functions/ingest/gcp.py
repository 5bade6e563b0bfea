"""ingest on Google Cloud (functions-framework, Eventarc Cloud Storage triggers).

Target ``ingest``, signature type ``cloudevent``, for both ``object.v1.finalized`` (ingest the
object) and ``object.v1.deleted`` (remove what that generation alone produced). Returning acknowledges the event; raising makes
the framework answer 500, and Eventarc retries (with its backoff, then its dead-letter topic).
A file that can never be ingested is reported ``rejected`` by the core and acknowledged; an event
that is neither is dead-lettered in the shared store and acknowledged.
"""

from __future__ import annotations

import logging
from typing import Any

import functions_framework

from functions.ingest.core import handle_object_created
from functions.ingest.deletion import handle_object_deleted
from shared.envelopes.errors import EnvelopeError
from shared.envelopes.gcp import object_event_from_cloudevent
from shared.events import ObjectDeleted
from shared.platform.runtime import FunctionRuntime

__all__ = ["ingest", "runtime"]

log = logging.getLogger(__name__)
runtime = FunctionRuntime("ingest", "gcp")


@functions_framework.cloud_event
@runtime.relaying
def ingest(cloud_event: Any) -> None:
    attributes = dict(cloud_event.get_attributes())
    try:
        event = object_event_from_cloudevent(attributes, cloud_event.get_data())
    except EnvelopeError as exc:
        runtime.poison(
            exc, {"attributes": attributes, "data": cloud_event.get_data()}, delivery_id=str(attributes.get("id"))
        )
        return
    if isinstance(event, ObjectDeleted):
        removed = handle_object_deleted(event, runtime.services)
        log.info(
            "deleted %s: %d track(s) removed",
            event.uri,
            removed.tracks,
            extra={"generation": event.generation, "cloudevent_id": attributes.get("id")},
        )
        return
    outcome = handle_object_created(event, runtime.services)
    log.info(
        "ingest %s: %s",
        event.uri,
        "replayed" if outcome.replayed else outcome.result.status,
        extra={"idempotency_key": event.idempotency_key, "cloudevent_id": attributes.get("id")},
    )
