"""HTTP-level failures, answered as RFC 9457 ``application/problem+json``.

Details name the problem and never echo the request's content: a field error names the field (or
the query parameter) and the rule it broke, never the value sent.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PROBLEM_JSON", "ApiError", "FieldError", "Problem", "bad_param", "not_found", "problem_body"]

PROBLEM_JSON = "application/problem+json"
# A URN rather than a made-up web address: each problem type is named, stable and not dereferenced.
_TYPE = "urn:contentfn:problem:{code}"


class FieldError(BaseModel):
    """One invalid input: a body field (JSON pointer) or a query parameter, and what is wrong with it."""

    model_config = ConfigDict(extra="forbid")

    detail: str
    pointer: str | None = None
    parameter: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem document; ``code`` is the last segment of ``type``, for clients that switch on it."""

    model_config = ConfigDict(extra="forbid")

    type: str
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str
    errors: list[FieldError] | None = None


class ApiError(Exception):
    """A refusal: status, a stable code, a detail that echoes nothing, and any headers it needs."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def problem(self) -> Problem:
        return Problem(
            type=_TYPE.format(code=self.code),
            title=HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.message,
            code=self.code,
            errors=self.errors,
        )


def problem_body(status: int, code: str, message: str) -> bytes:
    """The serialized problem, for adapters that refuse a request before the core sees it."""
    return json.dumps(ApiError(status, code, message).problem().model_dump(mode="json", exclude_none=True)).encode()


def bad_param(name: str, problem: str) -> ApiError:
    return ApiError(
        400,
        "invalid_parameter",
        f"query parameter '{name}' {problem}",
        errors=[FieldError(parameter=name, detail=problem)],
    )


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")
