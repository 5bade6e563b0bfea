"""``POST /analyze``: body checks and error mapping around :func:`functions.analyze.core.analyze_text`.

Errors name the problem, never the submitted text. The LLM's state never shows as an error: the
answer is then the rule-based profile flagged ``fallback``. This module depends on the analyze
function's public core, never the other way round.
"""

from __future__ import annotations

from typing import Any

from functions.analyze.core import AnalyzeRequest, TrackNotFound, analyze_text
from functions.api.auth import spend_llm_quota
from functions.api.errors import ApiError, not_found
from functions.api.params import json_body
from functions.api.routing import Call
from shared.errors import PoisonError

__all__ = ["analyze"]


def analyze(call: Call) -> dict[str, Any]:
    services = call.services
    body = json_body(
        call.request,
        AnalyzeRequest,
        what="analyze request",
        max_bytes=services.settings.analyze_max_text_chars * 4 + 4096,
    )
    if body.mode == "llm":
        spend_llm_quota(call)  # only a forced LLM call is paid per request; auto escalates within the budget
    try:
        analysis = analyze_text(body, services)
    except TrackNotFound:
        raise not_found("track") from None
    except PoisonError as exc:
        raise ApiError(413, "too_large", str(exc)) from None
    return analysis.model_dump(mode="json")
