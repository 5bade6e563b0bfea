"""``POST /analyze`` for the API core: body checks and error mapping around :func:`analyze_text`.

Errors name the problem, never the submitted text. The LLM's state never shows as an error: the
answer is then the rule-based profile flagged ``fallback``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from functions.analyze.core import AnalyzeRequest, TrackNotFound, analyze_text
from functions.api.errors import ApiError, not_found
from shared.errors import PoisonError
from shared.events import HttpRequest
from shared.services import Services

__all__ = ["analyze_endpoint", "intel_health"]


def analyze_endpoint(services: Services, request: HttpRequest) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    if len(request.body) > services.settings.analyze_max_text_chars * 4 + 4096:
        raise ApiError(413, "too_large", "request body over the limit")
    try:
        doc = json.loads(request.body)
        body = AnalyzeRequest.model_validate(doc)
    except ValueError as exc:
        fields = (
            sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            if isinstance(exc, ValidationError)
            else []
        )
        where = f" ({', '.join(f for f in fields if f)})" if any(fields) else ""
        raise ApiError(400, "invalid_body", f"body is not a valid analyze request{where}") from None
    try:
        return analyze_text(body, services)
    except TrackNotFound:
        raise not_found("track") from None
    except PoisonError as exc:
        raise ApiError(413, "too_large", str(exc)) from None


def intel_health(services: Services) -> dict[str, Any] | None:
    """The cache and breaker health, if this process has built them (None otherwise)."""
    from shared.intel.context import built_intel

    intel = built_intel(services)
    return None if intel is None else intel.health()
