"""deadletters on Google Cloud (functions-framework): a Cloud Scheduler HTTP job drains the Pub/Sub
dead-letter subscriptions into ``dead_jobs``. A request that is not from the scheduler is
dead-lettered in the shared store and acknowledged; a transient failure answers 500 and the
scheduler retries (the next tick imports the rest anyway).
"""

from __future__ import annotations

import logging

import flask
import functions_framework

from functions.deadletters.core import import_dead_letters
from shared.envelopes.gcp import is_scheduler_request
from shared.platform.runtime import FunctionRuntime, payload_digest

__all__ = ["deadletters", "runtime"]

log = logging.getLogger(__name__)
runtime = FunctionRuntime("deadletters", "gcp")


@functions_framework.http
def deadletters(request: flask.Request) -> flask.Response:
    headers = dict(request.headers.items())
    if not is_scheduler_request(headers):
        runtime.poison(
            "deadletters answers Cloud Scheduler requests only", headers, delivery_id=payload_digest(headers)
        )
        return flask.Response(status=204)
    report = import_dead_letters(runtime.services)
    log.info("dead letters imported: %s", report.model_dump(mode="json"))
    return flask.jsonify(report.model_dump(mode="json"))
