"""The browse filters as query parameters, shared by ``/tracks``, ``/search`` and ``/tracks/{id}/similar``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from functions.api.errors import ApiError, FieldError, bad_param
from functions.api.params import Param
from shared.store.browse import TrackFilter

__all__ = ["FILTER_PARAMS", "track_filter"]

FILTER_PARAMS: tuple[Param, ...] = (
    Param("artist", str, maximum=500, description="only this artist (case-insensitive)"),
    Param("sentiment", str, maximum=16, description="profile sentiment: positive, negative, neutral or mixed"),
    Param("theme", str, maximum=60, description="profile has this theme label"),
    Param("quality_min", int, maximum=10, description="profile quality at least (1-10)"),
    Param("quality_max", int, maximum=10, description="profile quality at most (1-10)"),
    Param("explicit", str, maximum=5, description="true or false, from the lyric features"),
    Param("analyzer", str, maximum=100, description="whose profile counts (rules, llm:<model>, distilled:<id>)"),
    Param("source", str, maximum=200, description="only tracks from this source"),
    Param("since", str, maximum=40, description="added at or after this ISO 8601 time"),
    Param("until", str, maximum=40, description="added before this ISO 8601 time"),
)

_BOOLS = {"true": True, "false": False}


def _time(name: str, text: object) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        raise bad_param(name, "must be an ISO 8601 date or time") from None


def track_filter(query: dict[str, Any]) -> TrackFilter:
    """The filter named by a request's validated query values."""
    explicit = query["explicit"]
    if explicit is not None and explicit.lower() not in _BOOLS:
        raise bad_param("explicit", "must be true or false")
    values = {
        "artist": query["artist"],
        "sentiment": query["sentiment"],
        "theme": query["theme"],
        "quality_min": query["quality_min"],
        "quality_max": query["quality_max"],
        "explicit": None if explicit is None else _BOOLS[explicit.lower()],
        "analyzer": query["analyzer"],
        "source": query["source"],
        "since": _time("since", query["since"]),
        "until": _time("until", query["until"]),
    }
    try:
        return TrackFilter(**values)
    except ValidationError as exc:
        # Name the parameters and the rule, never the values sent.
        errors = [
            FieldError(parameter=str(e["loc"][0]), detail="invalid value")
            if e["loc"]
            else FieldError(detail=e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        names = sorted({e.parameter for e in errors if e.parameter})
        rules = "; ".join(sorted({e.detail for e in errors if e.parameter is None}))
        detail = f"invalid value for {', '.join(names)}" if names else rules
        raise ApiError(400, "invalid_parameter", f"filter: {detail}", errors=errors) from None
