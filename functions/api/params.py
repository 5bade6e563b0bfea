"""Query-string and JSON-body validation: every parameter is declared; anything else is refused
before work starts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, TypeVar

from pydantic import BaseModel, ValidationError

from functions.api.errors import ApiError, FieldError, bad_param
from shared.events import HttpRequest

__all__ = ["Param", "json_body", "validate_query"]

_M = TypeVar("_M", bound=BaseModel)

# Request bodies are flat models: a few levels of nesting at most. Deeper is refused before parsing,
# since the C JSON decoder recurses once per level (a body of a few thousand "[" raises RecursionError,
# which is no ValueError) and pydantic walks what it decoded again.
MAX_BODY_DEPTH: Final = 32
_NOT_A_BRACKET: Final = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(body: bytes, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``: linear, without decoding (each
    step but the last loop runs in C)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # Escaped backslashes first, then escaped quotes: what is left of a string holds no quote, so
    # splitting at quotes puts the text outside strings at the even positions.
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(plain.split(b'"')[::2])
    depth = 0
    for byte in outside.translate(None, _NOT_A_BRACKET):
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False


def json_body(request: HttpRequest, model: type[_M], *, what: str, max_bytes: int = 8192) -> _M:
    """The body as ``model``: JSON only, size checked before parsing; errors name the fields, not their values."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    if len(request.body) > max_bytes:
        raise ApiError(413, "too_large", "request body over the limit")
    if _too_deep(request.body, MAX_BODY_DEPTH):
        raise ApiError(400, "invalid_body", f"body is not a valid {what} (nested deeper than {MAX_BODY_DEPTH} levels)")
    try:
        return model.model_validate(json.loads(request.body))
    except ValidationError as exc:
        errors = _field_errors(exc)
        fields = sorted({e.pointer[1:].replace("/", ".") for e in errors if e.pointer})
        where = f" ({', '.join(fields)})" if fields else ""
        raise ApiError(400, "invalid_body", f"body is not a valid {what}{where}", errors=errors) from None
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_body", f"body is not a valid {what}") from None


_MAX_FIELD_ERRORS = 20


def _field_errors(exc: ValidationError) -> list[FieldError]:
    """Each broken field as a JSON pointer and pydantic's rule text (which never quotes the value).

    An unexpected key is itself caller input: it is reported at the object holding it, unnamed."""
    out: list[FieldError] = []
    for e in exc.errors(include_url=False, include_input=False)[:_MAX_FIELD_ERRORS]:
        loc = [str(p) for p in e["loc"]]
        if e["type"] == "extra_forbidden":
            loc, detail = loc[:-1], "unexpected field"
        else:
            detail = e["msg"]
        out.append(FieldError(pointer="".join("/" + part for part in loc), detail=detail))
    return out


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # int or str
    required: bool = False
    default: int | str | None = None
    minimum: int = 1
    maximum: int = 1000
    description: str = ""


def validate_query(query: dict[str, list[str]], params: tuple[Param, ...]) -> dict[str, int | str | None]:
    allowed = {p.name for p in params}
    unknown = [name for name in query if name not in allowed]
    if unknown:
        # The unknown names are caller input: say how many and what is allowed, not what they were.
        accepted = ", ".join(sorted(allowed)) or "none"
        raise ApiError(
            400,
            "unknown_parameter",
            f"{len(unknown)} unknown query parameter(s); accepted: {accepted}",
            errors=[FieldError(detail=f"unknown query parameter; accepted: {accepted}")],
        )
    values: dict[str, int | str | None] = {}
    for p in params:
        raw = query.get(p.name)
        if raw is None:
            if p.required:
                raise bad_param(p.name, "is required")
            values[p.name] = p.default
            continue
        if len(raw) > 1:
            raise bad_param(p.name, "must be given once")
        text = raw[0]
        if p.kind is int:
            digits = max(9, len(str(p.maximum)))  # bounds the parse, whatever the caller sends
            if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > digits:
                raise bad_param(p.name, f"must be an integer between {p.minimum} and {p.maximum}")
            number = int(text)
            if not p.minimum <= number <= p.maximum:
                raise bad_param(p.name, f"must be an integer between {p.minimum} and {p.maximum}")
            values[p.name] = number
        else:
            stripped = text.strip()
            if len(stripped) < p.minimum:
                raise bad_param(p.name, "must not be empty")
            if len(text) > p.maximum:
                raise bad_param(p.name, f"must be at most {p.maximum} characters")
            if "\x00" in text:
                raise bad_param(p.name, "must not contain NUL characters")
            values[p.name] = stripped
    return values
