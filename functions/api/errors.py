"""HTTP-level failures. Messages name the problem and never echo the request's content."""

from __future__ import annotations

__all__ = ["ApiError", "bad_param", "not_found"]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_param(name: str, problem: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"query parameter '{name}' {problem}")


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")
