"""api on Google Cloud (functions-framework, signature ``http``, target ``api``).

The Flask request becomes the framework-neutral ``HttpRequest`` (body capped before it is read)
and the API core answers from the route table (:mod:`functions.api.routes`), exactly as on AWS and
the local server.
"""

from __future__ import annotations

import threading

import flask
import functions_framework

from functions.api.core import Api
from shared.envelopes._common import MAX_HTTP_BODY_BYTES
from shared.events import HttpRequest
from shared.platform.runtime import FunctionRuntime
from shared.services import Services

__all__ = ["api", "runtime"]

runtime = FunctionRuntime("api", "gcp", serves_http=True)
_cached: tuple[Services, Api] | None = None
_lock = threading.Lock()


def _core() -> Api:
    """Built on the first request, rebuilt only if the runtime's services were replaced."""
    global _cached
    services = runtime.services
    with _lock:
        if _cached is None or _cached[0] is not services:
            _cached = (services, Api(services))
        return _cached[1]


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    declared = request.content_length
    if declared is not None and declared > MAX_HTTP_BODY_BYTES:
        return _too_large()
    body = request.stream.read(MAX_HTTP_BODY_BYTES + 1)
    if len(body) > MAX_HTTP_BODY_BYTES:
        return _too_large()
    http_request = HttpRequest.from_parts(
        request.method, request.path, request.query_string.decode("latin-1"), dict(request.headers.items()), body
    )
    response = _core().handle(http_request)
    if request.method not in ("GET", "HEAD", "OPTIONS"):  # only writes queue jobs (analyses, images, streams)
        runtime.relay()
    runtime.flush_metrics()
    if response.stream is not None:
        # Werkzeug sends an iterable as it is produced and closes it when the answer ends.
        return flask.Response(response.stream, response.status, headers=response.headers)
    return flask.Response(response.body, response.status, headers=response.headers)


def _too_large() -> flask.Response:
    refused = Api.refusal(413, "too_large", "request body over the limit")
    return flask.Response(refused.body, refused.status, headers=refused.headers)
