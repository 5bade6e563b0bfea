"""The OpenAPI 3.1 document, generated from the route table so it cannot drift from the code."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from functions.api.routing import Call, Route
from shared import __version__

__all__ = ["build_openapi", "openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
# Models nested in a body or an answer are listed once under components and referenced from there.
_REF = "#/components/schemas/{model}"


def openapi(call: Call) -> dict[str, Any]:
    """``GET /openapi.json``: the document of the table this request was served from."""
    return build_openapi(call.routes, auth=call.services.settings.api_key is not None)


def build_openapi(routes: tuple[Route, ...], *, auth: bool) -> dict[str, Any]:
    schemas: dict[str, Any] = {
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
    }
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(route.pattern, {})[route.method.lower()] = _operation(route, auth, schemas)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "contentfn", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
    if auth:
        doc["security"] = [{"apiKey": []}]
    return doc


def _operation(route: Route, auth: bool, schemas: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if "{id}" in route.pattern:
        parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}})
    if "{name}" in route.pattern:
        parameters.append(
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 500}}
        )
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
    answer: dict[str, Any] = {"type": "object"}
    if route.response is not None:
        schemas[route.response.__name__] = _schema(route.response, schemas, mode="serialization")
        answer = {"$ref": _REF.format(model=route.response.__name__)}
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": answer}}},
            "400": {"description": "Invalid request", "content": {"application/json": {"schema": _ERROR}}},
            "404": {"description": "Not found", "content": {"application/json": {"schema": _ERROR}}},
        },
    }
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(route.body, schemas, mode="validation")}},
        }
        op["responses"]["413"] = {
            "description": "Body over the limit",
            "content": {"application/json": {"schema": _ERROR}},
        }
        op["responses"]["415"] = {"description": "Not JSON", "content": {"application/json": {"schema": _ERROR}}}
    if route.public:
        op["security"] = []
    elif auth:
        op["responses"]["401"] = {"description": "Unauthorized", "content": {"application/json": {"schema": _ERROR}}}
    return op


def _schema(model: type[BaseModel], schemas: dict[str, Any], *, mode: JsonSchemaMode) -> dict[str, Any]:
    """The model's JSON schema, its nested models moved to ``components.schemas``."""
    schema = model.model_json_schema(ref_template=_REF, mode=mode)
    schemas.update(schema.pop("$defs", {}))
    return schema
