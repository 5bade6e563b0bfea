"""The OpenAPI 3.1 document, generated from the route table so it cannot drift from the code.

Every operation lists each status it can answer (:meth:`Route.statuses`): its declared model on
success, an RFC 9457 problem otherwise, with the headers that come with them (``Location`` on 201,
``Retry-After`` on 429 and 503, ``WWW-Authenticate`` on 401), and on a keyed API the scope each
operation needs (``x-required-scope``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonSchemaMode

from functions.api.errors import PROBLEM_JSON, Problem
from functions.api.routing import Call, Route
from shared import __version__

__all__ = ["OpenApiDocument", "build_openapi", "openapi"]

# Models nested in a body or an answer are listed once under components and referenced from there.
_REF = "#/components/schemas/{model}"
_HEADERS = {
    201: {"Location": {"description": "path of the created resource", "schema": {"type": "string"}}},
    307: {"Location": {"description": "a short-lived signed URL of the bytes", "schema": {"type": "string"}}},
    401: {"WWW-Authenticate": {"description": "how to authenticate", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}},
}


class OpenApiDocument(BaseModel):
    """The document itself: checked for its top-level shape here, and in full by a spec validator in the tests."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


def openapi(call: Call) -> OpenApiDocument:
    """``GET /openapi.json``: the document of the table this request was served from."""
    return OpenApiDocument.model_validate(build_openapi(call.routes, auth=call.services.settings.api_auth))


def build_openapi(routes: tuple[Route, ...], *, auth: bool) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    _add(Problem, schemas, mode="serialization")
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(route.pattern, {})[route.method.lower()] = _operation(route, auth, schemas)
    components: dict[str, Any] = {"schemas": dict(sorted(schemas.items()))}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "contentfn",
            "version": __version__,
            "description": "Lists page with `limit` and an opaque `cursor`: pass a page's `next_cursor` to get "
            "the next; `null` means no more. Errors are `application/problem+json` (RFC 9457).",
        },
        "paths": paths,
        "components": components,
    }
    if auth:
        # Only a keyed API advertises the scheme, so its reference page asks for a key only then.
        components["securitySchemes"] = {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        doc["security"] = [{"apiKey": []}]
    return doc


def _operation(route: Route, auth: bool, schemas: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if "{id}" in route.pattern:
        parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}})
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
    media_type = route.media_type.split(";")[0]
    responses: dict[str, Any] = {}
    for status, meaning in route.statuses(auth=auth).items():
        if status < 300:
            if route.response is not None:
                content = {media_type: {"schema": {"$ref": _add(route.response, schemas, "serialization")}}}
            else:
                content = {media_type: {"schema": {"type": "string"}}}
        elif status < 400:
            content = {}  # a redirect: Location says where
        else:
            content = {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model=Problem.__name__)}}}
        answer: dict[str, Any] = {"description": meaning}
        if content:
            answer["content"] = content
        if status in _HEADERS:
            answer["headers"] = _HEADERS[status]
        responses[str(status)] = answer
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "parameters": parameters,
        "responses": responses,
    }
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _add(route.body, schemas, "validation")}}},
        }
    if route.public:
        op["security"] = []
    elif auth:
        # The scope a key needs, for clients and for the reference page (OpenAPI's apiKey scheme has no scopes).
        op["security"] = [{"apiKey": []}]
        op["x-required-scope"] = route.required_scope
        op["description"] = f"Requires a key with the `{route.required_scope}` scope (or a wider one)."
    return op


def _add(model: type[BaseModel], schemas: dict[str, Any], mode: JsonSchemaMode) -> str:
    """Put the model's JSON schema (and its nested models) under ``components.schemas``; its reference."""
    schema = model.model_json_schema(ref_template=_REF, mode=mode)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return _REF.format(model=model.__name__)
