"""The API core: ``HttpRequest`` in, ``HttpResponse`` out — served alike by the local server,
functions-framework (GCP) and the Powertools resolver (AWS).

The routes themselves are data (:mod:`functions.api.routes`); this module matches a request to one,
checks the key (its scope and quota, :mod:`functions.api.auth`) and the query, calls its handler,
audits write and admin actions and maps the outcome to a status and a JSON body.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from pydantic import BaseModel

from functions.api.auth import ANONYMOUS, KeyCache, QuotaLeases, authenticate, authorize, check_quota, record_action
from functions.api.errors import PROBLEM_JSON, ApiError
from functions.api.params import validate_query
from functions.api.routes import routes_for
from functions.api.routing import Asset, Call, Created, Route
from shared.errors import ModelNotReady, TransientError
from shared.events import HttpRequest, HttpResponse
from shared.metrics import HTTP_REQUESTS, HTTP_SECONDS
from shared.observability.traces import TRACEPARENT, TRACESTATE, SpanKind, span
from shared.services import Services
from shared.store.api_keys import ApiKey

__all__ = ["Api"]

log = logging.getLogger(__name__)

_NOSNIFF = {"x-content-type-options": "nosniff"}
_COMMON = {"cache-control": "no-store", **_NOSNIFF}
# The reference page runs only the scripts served beside it (Swagger UI sets inline styles).
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'"
)
# How long a client should wait before retrying a 503: a model still loading takes longer than a
# dependency's blip (a pool reconnect, a failover).
_RETRY_MODEL_S = "30"
_RETRY_DEPENDENCY_S = "5"

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


@dataclass(frozen=True)
class _Caller:
    """The W3C trace context a caller sent, so the request's span continues the caller's trace."""

    traceparent: str | None
    tracestate: str | None


class Api:
    """Routing, auth, validation and error mapping around the handlers of a route table."""

    def __init__(self, services: Services, routes: tuple[Route, ...] | None = None) -> None:
        self.services = services
        self.routes = routes_for(services.settings) if routes is None else routes
        # Per process: named keys trusted for a bounded time, and the per-minute quota reserved in slices.
        self.keys = KeyCache(services.settings.api_key_cache_s)
        self.quotas = QuotaLeases()

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request inside a server span that continues the caller's ``traceparent``."""
        matched: list[Route] = []  # the route that answered, for the span, the metrics and the audit
        caller = _Caller(request.headers.get(TRACEPARENT), request.headers.get(TRACESTATE))
        with span(f"{request.method} {request.path}", kind=SpanKind.SERVER, parent=caller) as current:
            try:
                response = self._handle(request, matched)
                current.set_attribute("http.response.status_code", response.status)
                return response
            finally:
                # Named after the route's template (few names), as OpenTelemetry's HTTP conventions ask.
                template = matched[0].template if matched else "unmatched"
                current.update_name(f"{request.method} {template}")
                current.set_attribute("http.request.method", request.method)
                current.set_attribute("http.route", template)

    def _handle(self, request: HttpRequest, matched: list[Route]) -> HttpResponse:
        started = time.perf_counter()
        acted: list[tuple[ApiKey | None, Route, dict[str, str]]] = []  # a write or admin action, for the audit
        status = 500  # what the metrics count where auditing or answering raises past this method
        try:
            response = self._respond(request, acted, matched)
            for key, route, path in acted:
                record_action(
                    self.services,
                    key_name=key.name if key is not None else ANONYMOUS,
                    route=route,
                    method=request.method,
                    target=response.headers.get("location") or path.get("id"),
                    status=response.status,
                )
            status = response.status
            return response
        finally:
            elapsed = time.perf_counter() - started
            # The route's template, never the raw path: ids in paths would make one series per id.
            # A streamed answer is counted when its headers are ready, not when its body ends.
            _record(matched[0].template if matched else "unmatched", request.method, status, elapsed)
            log.debug("%s %s %.1f ms", request.method, request.path, elapsed * 1000)

    def _respond(
        self,
        request: HttpRequest,
        acted: list[tuple[ApiKey | None, Route, dict[str, str]]],
        matched: list[Route],
    ) -> HttpResponse:
        try:
            route, path_params = self._match(request)
            matched.append(route)
            key: ApiKey | None = None
            if not route.public and self.services.settings.api_auth:
                key = authenticate(self.services, request, self.keys)
                if route.required_scope != "read":
                    acted.append((key, route, path_params))
                authorize(key, route)
                check_quota(self.services, key, self.quotas)
            elif route.required_scope != "read":
                acted.append((None, route, path_params))
            values = validate_query(request.query, route.params)
            result = route.handler(Call(self.services, request, values, path_params, self.routes, key))
            if isinstance(result, HttpResponse):  # a handler that shapes its own answer (a streamed export)
                return result
            return _answer(route, result)
        except ApiError as exc:
            return _problem(exc)
        except ModelNotReady:
            log.error("search model not available")
            headers = {"retry-after": _RETRY_MODEL_S}
            return _problem(ApiError(503, "model_unavailable", "the search model is not ready", headers=headers))
        except TransientError:
            log.exception("dependency unavailable")
            headers = {"retry-after": _RETRY_DEPENDENCY_S}
            return _problem(ApiError(503, "unavailable", "a dependency is unavailable; retry", headers=headers))
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return _problem(ApiError(500, "internal", "internal error"))

    @staticmethod
    def refusal(status: int, code: str, message: str) -> HttpResponse:
        """The problem answer of a refusal made before the core sees the request (an adapter's body cap)."""
        return _problem(ApiError(status, code, message))

    def route_for(self, request: HttpRequest) -> Route | None:
        """The route that answers ``request``, or None where the answer is 404 or 405."""
        try:
            return self._match(request)[0]
        except ApiError:
            return None

    def _match(self, request: HttpRequest) -> tuple[Route, dict[str, str]]:
        path = request.path.rstrip("/") or "/"
        methods: set[str] = set()
        for route in self.routes:
            m = route.regex.match(path)
            if m:
                if route.method == request.method or (route.method == "GET" and request.method == "HEAD"):
                    return route, m.groupdict()
                methods.add(route.method)
        if methods:
            if "GET" in methods:
                methods.add("HEAD")
            allow = ", ".join(sorted(methods))
            raise ApiError(405, "method_not_allowed", f"method not allowed; use {allow}", headers={"allow": allow})
        raise ApiError(404, "not_found", "no such endpoint")


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


def _answer(route: Route, result: Any) -> HttpResponse:
    """The handler's result as the route declares it: JSON of its model, 201 with Location, or an asset."""
    if isinstance(result, Asset):
        # Pages and their files are versioned with the code, so a short cache is safe; an asset read
        # with a key (an image) says so itself.
        headers = {"content-type": result.media_type, "cache-control": result.cache, **_NOSNIFF}
        if result.policy is not None:
            headers["content-security-policy"] = result.policy
        elif result.media_type.startswith("text/html"):
            headers["content-security-policy"] = _PAGE_POLICY
        return HttpResponse(status=200, body=result.content, headers=headers)
    headers = {"content-type": "application/json", **_COMMON}
    if isinstance(result, Created):
        headers["location"] = result.location
        result = result.body
    if route.response is not None and not isinstance(result, BaseModel):
        result = route.response.model_validate(result)  # a handler's dict still leaves as its declared model
    body = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    return HttpResponse(status=route.status, body=json.dumps(body, default=str).encode(), headers=headers)


def _problem(exc: ApiError) -> HttpResponse:
    body = exc.problem().model_dump(mode="json", exclude_none=True)
    headers = {"content-type": PROBLEM_JSON, **_COMMON, **exc.headers}
    return HttpResponse(status=exc.status, body=json.dumps(body).encode(), headers=headers)
