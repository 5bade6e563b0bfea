"""The API's route table, its OpenAPI document and the import graph of the function packages.

The table is the one source of truth: every route is documented, every documented operation is
served by the route of that method, and handlers are callables imported at module level, not names
looked up at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.api.openapi import build_openapi
from functions.api.routes import routes_for
from functions.api.routing import Route
from shared.config import load_settings
from tests.conftest import REPO

FUNCTIONS = REPO / "functions"
API = FUNCTIONS / "api"


@pytest.fixture(scope="module")
def routes() -> tuple[Route, ...]:
    return routes_for(load_settings(search_max_k=77))


def _operations(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


@pytest.mark.parametrize("auth", [True, False])
def test_every_route_is_documented_and_every_documented_operation_is_a_route(
    routes: tuple[Route, ...], auth: bool
) -> None:
    # GIVEN the table and the document generated from it
    doc = build_openapi(routes, auth=auth)
    # THEN they list the same operations, once each, with distinct operation ids
    table = [(r.method, r.pattern) for r in routes]
    assert len(table) == len(set(table))
    assert _operations(doc) == set(table)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == len(routes)


def test_each_documented_operation_is_matched_first_by_its_own_route(routes: tuple[Route, ...]) -> None:
    # GIVEN every documented operation, its path filled in as a client would
    for method, path in _operations(build_openapi(routes, auth=True)):
        concrete = path.replace("{id}", "42")
        # WHEN the core's rule picks the first route whose pattern matches (and whose method is right)
        served = next(r for r in routes if r.regex.match(concrete) and r.method == method)
        # THEN it is the documented route itself: no earlier pattern shadows it
        assert served.pattern == path, (method, path)


def test_the_document_carries_each_routes_parameters_body_and_answer(routes: tuple[Route, ...]) -> None:
    doc = build_openapi(routes, auth=True)
    schemas = doc["components"]["schemas"]
    for route in routes:
        op = doc["paths"][route.pattern][route.method.lower()]
        query = [p for p in op["parameters"] if p["in"] == "query"]
        assert [p["name"] for p in query] == [p.name for p in route.params]
        assert ("requestBody" in op) == (route.body is not None)
        assert ({"413", "415"} <= set(op["responses"])) == (route.body is not None)
        assert ("401" in op["responses"]) == (not route.public)
        success = op["responses"][str(route.status)]["content"]
        if route.media_type == "application/json":
            # every JSON route declares its answer: none is documented as a bare object any more
            assert route.response is not None, route.operation_id
            assert success["application/json"]["schema"] == {"$ref": f"#/components/schemas/{route.response.__name__}"}
            assert route.response.__name__ in schemas
        else:
            assert set(success) == {route.media_type.split(";")[0]}
    # the limits come from Settings
    search = doc["paths"]["/search"]["get"]["parameters"]
    assert next(p for p in search if p["name"] == "k")["schema"]["maximum"] == 77


@pytest.mark.parametrize("auth", [True, False])
def test_the_document_passes_an_openapi_3_1_validator(routes: tuple[Route, ...], auth: bool) -> None:
    try:
        from openapi_spec_validator import OpenAPIV31SpecValidator
    except ImportError:  # a dev dependency (pyproject [dev]); its absence must not pass silently
        pytest.fail("openapi-spec-validator is not installed: pip install -e '.[dev]'")
    doc = build_openapi(routes, auth=auth)
    assert doc["openapi"] == "3.1.0"
    errors = [e.message for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []


def test_every_error_status_is_a_problem_document_with_its_headers(routes: tuple[Route, ...]) -> None:
    doc = build_openapi(routes, auth=True)
    for route in routes:
        responses = doc["paths"][route.pattern][route.method.lower()]["responses"]
        for status, answer in responses.items():
            if int(status) >= 400:
                assert answer["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }
        # a route that reads the store can be unavailable, and says when to come back
        assert ("503" in responses) == (not route.static), route.operation_id
        if "503" in responses:
            assert "Retry-After" in responses["503"]["headers"]
    create = doc["paths"]["/streams"]["post"]["responses"]
    assert "200" not in create and "Location" in create["201"]["headers"]
    assert "409" in doc["paths"]["/tracks/{id}/similar"]["get"]["responses"]


def test_a_keyless_document_declares_no_security_so_the_reference_page_asks_for_no_key(
    routes: tuple[Route, ...],
) -> None:
    keyless, keyed = build_openapi(routes, auth=False), build_openapi(routes, auth=True)
    assert "securitySchemes" not in keyless["components"] and "security" not in keyless
    assert keyed["security"] == [{"apiKey": []}]
    assert keyed["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}


def test_every_list_route_pages_with_limit_and_one_cursor(routes: tuple[Route, ...]) -> None:
    doc = build_openapi(routes, auth=True)
    schemas = doc["components"]["schemas"]
    lists = {r.pattern: (r, r.response) for r in routes if r.response and "next_cursor" in r.response.model_fields}
    assert set(lists) == {"/tracks", "/images", "/streams", "/streams/{id}/detections", "/dead-jobs", "/objects"}
    for route, model in lists.values():
        names = {p.name for p in route.params}
        assert {"cursor", "limit"} <= names and not names & {"before", "after"}, route.pattern
        schema = schemas[model.__name__]
        assert {"items", "next_cursor"} <= set(schema["required"])


def test_every_reference_in_the_document_resolves(routes: tuple[Route, ...]) -> None:
    doc = build_openapi(routes, auth=True)

    def refs(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(doc))
    assert "#/components/schemas/SearchHit" in found  # nested models are hoisted, not left in $defs
    for ref in found:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in doc["components"]["schemas"]


def test_handlers_are_callables_of_the_api_package(routes: tuple[Route, ...]) -> None:
    for route in routes:
        assert callable(route.handler) and route.handler.__module__.startswith("functions.api."), route


# -- imports -------------------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[str, tuple[str, ...], bool]]:
    """(module, names imported from it, imported inside a function) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, (), id(node) in nested
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, tuple(a.name for a in node.names), id(node) in nested


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "functions" and len(parts) > 1 else None


def _function_files() -> list[Path]:
    return sorted(p for p in FUNCTIONS.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_function_packages_import_each_other_without_a_cycle() -> None:
    # GIVEN which function package imports which, at module level or inside functions
    edges: dict[str, set[str]] = {}
    for path in _function_files():
        source = _package(_module_name(path))
        for module, _names, _nested in _imports(path):
            target = _package(module)
            if source and target and target != source:
                edges.setdefault(source, set()).add(target)

    # THEN following those edges never leads back to where it started
    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in edges.get(node, ()):
                if nxt == start:
                    return [*trail, nxt]
                if nxt not in trail:
                    stack.append((nxt, [*trail, nxt]))
        return None

    # the API answers POST /analyze with the analyze core, and checks an upload's name against the
    # file types ingest parses
    assert edges.get("api") == {"analyze", "ingest"}
    for package in edges:
        assert cycle_from(package) is None, " -> ".join(cycle_from(package) or [])


def _public_names(module: str) -> set[str]:
    path = REPO / Path(*module.split(".")).with_suffix(".py")
    if not path.exists():  # a package: its names are in its __init__
        path = REPO / Path(*module.split(".")) / "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def test_the_api_uses_only_public_names_of_other_function_packages() -> None:
    for path in sorted(API.glob("*.py")):
        for module, names, _nested in _imports(path):
            if _package(module) in (None, "api"):
                continue
            assert not any(part.startswith("_") for part in module.split(".")), (path.name, module)
            assert set(names) <= _public_names(module), (path.name, module, names)


def test_the_api_imports_at_module_level_and_looks_nothing_up_by_name() -> None:
    # Function-local imports were how handlers dodged import cycles; importlib, how bodies were found.
    for path in sorted(API.glob("*.py")):
        for module, _names, nested in _imports(path):
            assert module != "importlib" and not module.startswith("importlib."), path.name
            assert not (nested and module.startswith("functions.")), (path.name, module)


def test_the_export_operation_answers_ndjson_and_declares_the_lambda_cap(routes: tuple[Route, ...]) -> None:
    doc = build_openapi(routes, auth=True)
    responses = doc["paths"]["/export"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["application/x-ndjson"]
    assert "413" in responses and list(responses["413"]["content"]) == ["application/problem+json"]
