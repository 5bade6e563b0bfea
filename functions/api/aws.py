"""api on AWS Lambda: API Gateway HTTP API (payload 2.0) and Lambda function URLs.

Powertools' ``APIGatewayHttpResolver`` is handed one catch-all route (its documented ``.+`` rule)
for every method; the route table (:mod:`functions.api.routes`) is matched once, by the API core,
as on the local server and GCP. Registering the table with the resolver as well would make two
routers that must agree: the resolver answers a known path with a wrong method as not found, while
the core answers 405 naming the methods, treats HEAD as GET and ignores a trailing slash. So the
resolver keeps the part it is good at (the event as a typed proxy event, the answer in the payload
2.0 shape) and the core alone decides the route, status and body on every platform.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.core import Api
from shared.envelopes.aws import http_request_from_apigw_v2
from shared.envelopes.errors import MalformedEnvelope, RequestTooLarge
from shared.events import HttpResponse
from shared.platform.aws import powertools_logger
from shared.platform.runtime import FunctionRuntime
from shared.services import Services

__all__ = ["MAX_STREAMED_BODY_BYTES", "build_resolver", "handler", "runtime"]

logger = powertools_logger("contentfn-api")
metrics = Metrics(namespace="contentfn", service="api")
runtime = FunctionRuntime("api", "aws", serves_http=True)
_cached: tuple[Services, APIGatewayHttpResolver] | None = None
_lock = threading.Lock()


# Lambda's buffered response payload is at most 6 MB; a streamed answer (an export) is collected up
# to this cap, which leaves room for the headers and the JSON envelope around the body.
MAX_STREAMED_BODY_BYTES = 5 * 2**20

# The resolver compares methods literally, so the catch-all names the usual ones.
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def build_resolver(api: Api) -> APIGatewayHttpResolver:
    """A resolver whose one catch-all rule hands every request to the core."""
    app = APIGatewayHttpResolver()

    @app.route(".+", method=_METHODS)
    def dispatch() -> Response:
        return _respond(api, app.current_event.raw_event)

    @app.not_found
    def other_method(_exc: Exception) -> Response:
        # A method outside the list above: the core answers it (405 or 404) exactly as elsewhere.
        return _respond(api, app.current_event.raw_event)

    return app


def _respond(api: Api, raw_event: dict[str, Any]) -> Response:
    head = False
    try:
        request = http_request_from_apigw_v2(raw_event)
        head = request.method == "HEAD"
        response = api.handle(request)
    except RequestTooLarge:
        response = Api.refusal(413, "too_large", "request body over the limit")
    except MalformedEnvelope:
        response = Api.refusal(400, "bad_request", "malformed request")
    metrics.add_metric(name=f"Http{response.status // 100}xx", unit=MetricUnit.Count, value=1)
    return _to_powertools(response, head=head)


def _to_powertools(response: HttpResponse, *, head: bool) -> Response:
    if response.stream is not None:
        # A buffered Lambda answer is capped (6 MB); a streamed export is read whole up to the cap.
        whole = response.buffered(MAX_STREAMED_BODY_BYTES)
        if whole is None:
            response = Api.refusal(
                413,
                "too_large",
                f"the answer is over {MAX_STREAMED_BODY_BYTES // 2**20} MiB, the most AWS Lambda returns;"
                " narrow it (filters) or export with the CLI",
            )
        else:
            response = HttpResponse(status=response.status, body=whole, headers=response.headers)
    headers = dict(response.headers)
    content_type = headers.pop("content-type", "application/json")
    # Text leaves as text; anything else (an image) as bytes, which Powertools base64-encodes for
    # API Gateway (isBase64Encoded).
    textual = content_type.startswith(("text/", "application/"))
    body: str | bytes = response.body.decode("utf-8") if textual else response.body
    return Response(status_code=response.status, content_type=content_type, body="" if head else body, headers=headers)


def _app() -> APIGatewayHttpResolver:
    """Built on the first request, rebuilt only if the runtime's services were replaced."""
    global _cached
    services = runtime.services
    with _lock:
        if _cached is None or _cached[0] is not services:
            _cached = (services, build_resolver(Api(services)))
        return _cached[1]


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    try:
        return _app().resolve(event, context)
    finally:
        method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")
        if method not in ("GET", "HEAD", "OPTIONS"):  # only writes queue jobs (analyses, images, streams)
            runtime.relay()
        runtime.flush_metrics()
