"""The OpenAPI 3.1 document, generated from the route table so it cannot drift from the code."""

from __future__ import annotations

from typing import Any

from functions.api.core import Route
from shared import __version__

__all__ = ["build_openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def build_openapi(routes: tuple[Route, ...], *, auth: bool) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        parameters: list[dict[str, Any]] = []
        if "{id}" in route.pattern:
            parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}})
        for p in route.params:
            schema: dict[str, Any] = (
                {"type": "integer", "minimum": p.minimum, "maximum": p.maximum}
                if p.kind is int
                else {"type": "string", "minLength": 1, "maxLength": p.maximum}
            )
            if p.default is not None:
                schema["default"] = p.default
            parameters.append(
                {"name": p.name, "in": "query", "required": p.required, "schema": schema, "description": p.description}
            )
        op: dict[str, Any] = {
            "operationId": route.handler,
            "summary": route.summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"description": "Invalid request", "content": {"application/json": {"schema": _ERROR}}},
                "404": {"description": "Not found", "content": {"application/json": {"schema": _ERROR}}},
            },
        }
        model = route.body_model()
        if model is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": model.model_json_schema()}},
            }
            op["responses"]["413"] = {
                "description": "Body over the limit",
                "content": {"application/json": {"schema": _ERROR}},
            }
            op["responses"]["415"] = {"description": "Not JSON", "content": {"application/json": {"schema": _ERROR}}}
        if route.public:
            op["security"] = []
        elif auth:
            op["responses"]["401"] = {
                "description": "Unauthorized",
                "content": {"application/json": {"schema": _ERROR}},
            }
        paths.setdefault(route.pattern, {})[route.method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "contentfn", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                            "required": ["code", "message"],
                        }
                    },
                }
            },
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
    if auth:
        doc["security"] = [{"apiKey": []}]
    return doc
