"""A test-suite-wide check of the API contract: every answer the API core gives during any test is
held against what its route declares in the table (and so in the OpenAPI document).

The core's ``Api.handle`` is wrapped for the test session: every HTTP server the tests start in
process (local server, functions-framework app, Powertools resolver) and every direct call goes
through it. The answer's status must be one the route lists; a success body must validate against
the route's response model (whose models forbid undeclared keys); an error must be an RFC 9457
problem whose ``status`` is the HTTP status, with ``Allow`` on 405 and ``Retry-After`` on 429/503.
Violations are collected (the server thread must still answer) and fail the test that caused them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from functions.api.core import Api
from functions.api.errors import PROBLEM_JSON, Problem
from shared.events import HttpRequest, HttpResponse

__all__ = ["api_contract", "contract_violation"]

_original_handle = Api.handle
_violations: list[str] = []
_lock = threading.Lock()


def contract_violation(api: Api, request: HttpRequest, response: HttpResponse) -> str | None:
    """What is wrong with ``response`` as the answer to ``request`` (None when nothing is)."""
    where = f"{request.method} {request.path} -> {response.status}"
    media = response.headers.get("content-type", "").split(";")[0]
    route = api.route_for(request)
    if response.status >= 400:
        if media != PROBLEM_JSON:
            return f"{where}: error answered as {media!r}, not {PROBLEM_JSON}"
        try:
            problem = Problem.model_validate_json(response.body)
        except ValidationError as exc:
            return f"{where}: not a problem document: {exc}"
        if problem.status != response.status:
            return f"{where}: problem says status {problem.status}"
        if response.status == 405 and not response.headers.get("allow"):
            return f"{where}: 405 without Allow"
        if response.status in (429, 503) and not response.headers.get("retry-after", "").isdigit():
            return f"{where}: no Retry-After"
        if route is None:
            return None if response.status in (404, 405) else f"{where}: no route, yet not 404/405"
    elif route is None:
        return f"{where}: answered without a route"
    assert route is not None
    declared = route.statuses(auth=api.services.settings.api_auth)
    if response.status not in declared:
        return f"{where}: status not declared by {route.operation_id} ({sorted(declared)})"
    if response.status >= 400:
        return None
    if 300 <= response.status < 400:
        return None if response.headers.get("location") else f"{where}: redirect without Location"
    if response.status == 201 and not response.headers.get("location"):
        return f"{where}: 201 without Location"
    declared_media = route.media_type.split(";")[0]
    if media != declared_media and not (declared_media.endswith("/*") and media.startswith(declared_media[:-1])):
        return f"{where}: answered as {media!r}, declared {route.media_type!r}"
    if route.response is not None:
        try:
            route.response.model_validate_json(response.body)
        except ValidationError as exc:
            return f"{where}: body does not match {route.response.__name__}: {exc}"
    return None


def _checked_handle(self: Api, request: HttpRequest) -> HttpResponse:
    response = _original_handle(self, request)
    violation = contract_violation(self, request, response)
    if violation is not None:
        with _lock:
            _violations.append(violation)
    return response


@pytest.fixture(autouse=True)
def api_contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Autouse: checks every API answer given during the test; fails the test on a violation."""
    monkeypatch.setattr(Api, "handle", _checked_handle)
    with _lock:
        _violations.clear()
    yield
    with _lock:
        found = list(_violations)
        _violations.clear()
    assert not found, "API answers broke the declared contract:\n" + "\n".join(found)
