"""Query-string validation: every parameter is declared; anything else is refused before work starts."""

from __future__ import annotations

from dataclasses import dataclass

from functions.api.errors import ApiError, bad_param

__all__ = ["Param", "validate_query"]


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
        raise ApiError(400, "unknown_parameter", f"{len(unknown)} unknown query parameter(s); accepted: {accepted}")
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
