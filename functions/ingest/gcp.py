"""ingest on Google Cloud (functions-framework, Eventarc Cloud Storage trigger).

Target ``ingest``, signature type ``cloudevent``. Returning acknowledges the event; raising makes
the framework answer 500, and Eventarc retries (with its backoff, then its dead-letter topic).
A file that can never be ingested is reported ``rejected`` by the core and acknowledged; an event
that is not an object-finalized event is dead-lettered in the shared store and acknowledged.
"""

from __future__ import annotations

import logging
from typing import Any

import functions_framework

from functions.ingest.core import handle_object_created
from shared.envelopes.errors import EnvelopeError
from shared.envelopes.gcp import object_created_from_cloudevent
from shared.platform.runtime import FunctionRuntime

__all__ = ["ingest", "runtime"]

log = logging.getLogger(__name__)
runtime = FunctionRuntime("ingest", "gcp")


@functions_framework.cloud_event
@runtime.relaying
def ingest(cloud_event: Any) -> None:
    attributes = dict(cloud_event.get_attributes())
    try:
        event = object_created_from_cloudevent(attributes, cloud_event.get_data())
    except EnvelopeError as exc:
        runtime.poison(
            exc, {"attributes": attributes, "data": cloud_event.get_data()}, delivery_id=str(attributes.get("id"))
        )
        return
    outcome = handle_object_created(event, runtime.services)
    log.info(
        "ingest %s: %s",
        event.uri,
        "replayed" if outcome.replayed else outcome.result.status,
        extra={"idempotency_key": event.idempotency_key, "cloudevent_id": attributes.get("id")},
    )
