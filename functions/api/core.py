"""The API core: ``HttpRequest`` in, ``HttpResponse`` out — served alike by the local server,
functions-framework (GCP) and the Powertools resolver (AWS).

The routes themselves are data (:mod:`functions.api.routes`); this module matches a request to one,
checks the key and the query, calls its handler and maps the outcome to a status and a JSON body.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram
from pydantic import BaseModel

from functions.api.errors import ApiError
from functions.api.params import validate_query
from functions.api.routes import routes_for
from functions.api.routing import Call, Route
from shared.errors import ModelNotReady, TransientError
from shared.events import HttpRequest, HttpResponse
from shared.metrics import HTTP_REQUESTS, HTTP_SECONDS
from shared.services import Services

__all__ = ["Api"]

log = logging.getLogger(__name__)

_JSON = {"content-type": "application/json", "cache-control": "no-store", "x-content-type-options": "nosniff"}

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


class Api:
    """Routing, auth, validation and error mapping around the handlers of a route table."""

    def __init__(self, services: Services, routes: tuple[Route, ...] | None = None) -> None:
        self.services = services
        self.routes = routes_for(services.settings) if routes is None else routes

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        route: Route | None = None
        response: HttpResponse | None = None
        try:
            route, path_params = self._match(request)
            if not route.public:
                self._authorize(request)
            values = validate_query(request.query, route.params)
            body = route.handler(Call(self.services, request, values, path_params, self.routes))
            response = _json(200, body)
        except ApiError as exc:
            response = _json(exc.status, {"error": {"code": exc.code, "message": exc.message}})
        except ModelNotReady:
            log.error("search model not available")
            response = _json(503, {"error": {"code": "model_unavailable", "message": "the search model is not ready"}})
        except TransientError:
            log.exception("dependency unavailable")
            response = _json(503, {"error": {"code": "unavailable", "message": "a dependency is unavailable; retry"}})
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = _json(500, {"error": {"code": "internal", "message": "internal error"}})
        finally:
            elapsed = time.perf_counter() - started
            # The route's template, never the raw path: ids in paths would make one series per id.
            status = response.status if response is not None else 500
            _record(route.pattern if route is not None else "unmatched", request.method, status, elapsed)
            log.debug("%s %s %.1f ms", request.method, request.path, elapsed * 1000)
        assert response is not None  # every path above answers or raises past the finally
        return response

    def _match(self, request: HttpRequest) -> tuple[Route, dict[str, str]]:
        path = request.path.rstrip("/") or "/"
        methods = []
        for route in self.routes:
            m = route.regex.match(path)
            if m:
                if route.method == request.method or (route.method == "GET" and request.method == "HEAD"):
                    return route, m.groupdict()
                methods.append(route.method)
        if methods:
            raise ApiError(405, "method_not_allowed", f"method not allowed; use {', '.join(sorted(set(methods)))}")
        raise ApiError(404, "not_found", "no such endpoint")

    def _authorize(self, request: HttpRequest) -> None:
        key = self.services.settings.api_key
        if key is None:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
        expected = key.get_secret_value().encode()
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise ApiError(401, "unauthorized", "missing or invalid API key (send X-API-Key)")


def _record(route: str, method: str, status: int, seconds: float) -> None:
    # The series of a (route, method, status) are looked up once: a request then costs one dict
    # hit, an increment and an observation. Keys stay few: route templates, known methods, statuses.
    key = (route, method if method in _METHODS else "OTHER", status)
    series = _series.get(key)
    if series is None:
        series = _series.setdefault(
            key,
            (HTTP_REQUESTS.labels(key[0], key[1], str(status)), HTTP_SECONDS.labels(route, f"{status // 100}xx")),
        )
    series[0].inc()
    series[1].observe(seconds)


def _json(status: int, body: Any) -> HttpResponse:
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="json")
    return HttpResponse(status=status, body=json.dumps(body, default=str).encode(), headers=dict(_JSON))
