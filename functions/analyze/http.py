"""``POST /analyze`` for the API core: body checks and error mapping around :func:`analyze_text`.

Errors name the problem, never the submitted text. The LLM's state never shows as an error: the
answer is then the rule-based profile flagged ``fallback``.
"""

from __future__ import annotations

from typing import Any

from functions.analyze.core import AnalyzeRequest, TrackNotFound, analyze_text
from functions.api.errors import ApiError, not_found
from functions.api.params import json_body
from shared.errors import PoisonError
from shared.events import HttpRequest
from shared.services import Services

__all__ = ["analyze_endpoint", "intel_health"]


def analyze_endpoint(services: Services, request: HttpRequest) -> dict[str, Any]:
    body = json_body(
        request, AnalyzeRequest, what="analyze request", max_bytes=services.settings.analyze_max_text_chars * 4 + 4096
    )
    try:
        analysis = analyze_text(body, services)
    except TrackNotFound:
        raise not_found("track") from None
    except PoisonError as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    return analysis.model_dump(mode="json")


def intel_health(services: Services) -> dict[str, Any] | None:
    """The cache and breaker health, if this process has built them (None otherwise)."""
    from shared.intel.context import built_intel

    intel = built_intel(services)
    return None if intel is None else intel.health()
