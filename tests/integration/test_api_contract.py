"""The API's conventions over the real HTTP server and a real database: one pagination for every
list, RFC 9457 problems, 201 + Location, Allow on 405, Retry-After on 503, the served OpenAPI 3.1
document and the ``/docs`` page from vendored files. (Every answer here is also checked against its
route's declaration by the suite-wide hook in ``tests/api_contract.py``.)"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from functions.api.core import Api
from functions.api.routes import routes_for
from local.server import ApiServer
from shared.events import HttpRequest, HttpResponse
from shared.services import Services
from shared.vision.stream_registry import register_stream
from tests.api_contract import contract_violation
from tests.conftest import need

N = 5  # rows of each list: pages of 2 make two full pages and a last one


def _seed_images(svc: Services) -> list[int]:
    with svc.db.connection() as conn:
        rows = [
            conn.execute(
                "INSERT INTO images (content_hash, bucket, key, bytes, status) VALUES (%s, 'b', %s, 10, 'pending')"
                " RETURNING id",
                (f"h{i}", f"images/{i}.jpg"),
            ).fetchone()
            for i in range(N)
        ]
        conn.commit()
    return [int(r[0]) for r in rows if r]


def _seed_streams(svc: Services) -> list[int]:
    with svc.db.connection() as conn:
        ids = [
            int(register_stream(conn, f"rtsp://93.184.216.34/cam{i}", 1.0, model=None, keyframes_only=False)["id"])
            for i in range(N)
        ]
        conn.commit()
    return ids


def _seed_dead_jobs(svc: Services) -> list[int]:
    with svc.db.connection() as conn:
        rows = [
            conn.execute(
                "INSERT INTO dead_jobs (job_id, kind, payload, dedup_key, attempts, last_error, retryable, created_at)"
                " VALUES (%s, 'embed', %s::jsonb, %s, 3, 'x', false, now()) RETURNING id",
                (100 + i, json.dumps({"track_id": i, "content_hash": "h"}), f"embed:{i}:h"),
            ).fetchone()
            for i in range(N)
        ]
        conn.commit()
    return [int(r[0]) for r in rows if r]


LISTS: dict[str, Callable[[Services], list[int]]] = {
    "/images": _seed_images,
    "/streams": _seed_streams,
    "/dead-jobs": _seed_dead_jobs,
}


def _serve(services: Services) -> Iterator[str]:
    srv = ApiServer(Api(services), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}"
    finally:
        srv.stop()


@pytest.fixture
def api(services: Services) -> Iterator[str]:
    yield from _serve(services)


@pytest.mark.parametrize("path", sorted(LISTS))
def test_a_list_pages_through_every_item_once_newest_first_with_the_cursor(
    services: Services, api: str, path: str
) -> None:
    # GIVEN five rows in the list
    ids = LISTS[path](services)
    # WHEN it is read two at a time, each page asked for with the previous page's next_cursor
    seen: list[int] = []
    cursors: list[str | None] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = httpx.get(f"{api}{path}", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        cursors.append(body["next_cursor"])
        if body["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": body["next_cursor"]}
    # THEN every row came once, newest first, in three pages, the last one saying there is no more
    assert seen == sorted(ids, reverse=True)
    assert len(cursors) == 3 and cursors[-1] is None
    # AND the cursor is opaque URL-safe text, not an id a client would be tempted to build
    assert cursors[0] is not None and not cursors[0].isdigit()


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        _b64([1, 2]),
        _b64({"on": "streams", "id": 3}),  # another list's cursor
        _b64({"on": "images", "id": -4}),
        _b64({"on": "images", "id": 3, "drop": "tables"}),
        _b64({"on": "images", "id": "3 OR 1=1"}),
    ],
)
def test_a_cursor_this_list_did_not_issue_is_a_400_naming_the_parameter(api: str, cursor: str) -> None:
    resp = httpx.get(f"{api}/images", params={"cursor": cursor})
    assert resp.status_code == 400 and resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["code"] == "invalid_parameter" and "'cursor'" in problem["detail"]
    assert [e["parameter"] for e in problem["errors"]] == ["cursor"]
    assert cursor not in resp.text


def test_registering_a_stream_answers_201_with_the_location_of_the_new_stream(api: str) -> None:
    resp = httpx.post(f"{api}/streams", json={"url": "rtsp://93.184.216.34/cam", "fps": 1})
    assert resp.status_code == 201
    created = resp.json()["stream"]
    assert resp.headers["location"] == f"/streams/{created['id']}"
    again = httpx.get(f"{api}{resp.headers['location']}")
    assert again.status_code == 200 and again.json()["stream"]["id"] == created["id"]


def test_an_invalid_body_lists_each_field_error_without_echoing_values(api: str) -> None:
    sent = {"url": "", "fps": -1, "sneaky-field-name": "sneaky-value"}
    resp = httpx.post(f"{api}/streams", json=sent)
    assert resp.status_code == 400 and resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["type"] == "urn:contentfn:problem:invalid_body" and problem["title"] == "Bad Request"
    assert {e["pointer"]: e["detail"] for e in problem["errors"]}.keys() == {"/url", "/fps", ""}
    assert "sneaky" not in resp.text


def test_a_wrong_method_answers_405_with_the_allowed_methods(api: str) -> None:
    resp = httpx.put(f"{api}/streams", json={})
    assert resp.status_code == 405 and resp.headers["allow"] == "GET, HEAD, POST"
    assert resp.json()["code"] == "method_not_allowed"
    assert httpx.patch(f"{api}/dead-jobs/7").headers["allow"] == "DELETE, GET, HEAD"


def test_search_without_its_model_answers_503_with_retry_after(settings: Any, tmp_path: Path) -> None:
    # GIVEN an API whose model files are not there (a fresh deployment before `make model`)
    empty = tmp_path / "no-model"
    empty.mkdir()
    services = Services.from_settings(settings.model_copy(update={"model_dir": empty}))
    try:
        for url in _serve(services):
            # WHEN a search comes in THEN it is refused for now, saying when to come back
            resp = httpx.get(f"{url}/search", params={"q": "sea"})
            assert resp.status_code == 503 and resp.headers["retry-after"] == "30"
            assert resp.json()["code"] == "model_unavailable"
            # AND what needs no model still answers
            assert httpx.get(f"{url}/images").status_code == 200
    finally:
        services.close()


@pytest.mark.parametrize("key", [None, "s3cret-key"])
def test_the_served_document_is_valid_openapi_3_1(services: Services, key: str | None) -> None:
    try:
        from openapi_spec_validator import OpenAPIV31SpecValidator
    except ImportError:  # a dev dependency (pyproject [dev]); its absence must not pass silently
        pytest.fail("openapi-spec-validator is not installed: pip install -e '.[dev]'")
    secret = None if key is None else SecretStr(key)
    keyed = Services.from_settings(services.settings.model_copy(update={"api_key": secret}))
    try:
        for url in _serve(keyed):
            doc = httpx.get(f"{url}/openapi.json").json()  # public, with or without a key
    finally:
        keyed.close()
    assert doc["openapi"] == "3.1.0"
    assert [e.message for e in OpenAPIV31SpecValidator(doc).iter_errors()] == []
    assert ("securitySchemes" in doc["components"]) == (key is not None)


def test_the_docs_page_and_its_assets_are_served_by_the_api_without_a_cdn(api: str) -> None:
    page = httpx.get(f"{api}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # nothing loaded from elsewhere
    for asset, media in [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("docs-init.js", "text/javascript"),
    ]:
        assert f"docs/{asset}" in page.text
        resp = httpx.get(f"{api}/docs/{asset}")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(media), asset
        assert len(resp.content) > 100
    assert "SwaggerUIBundle" in httpx.get(f"{api}/docs/swagger-ui-bundle.js").text
    # with a trailing slash the page links its files one level nearer, so they still resolve
    slashed = httpx.get(f"{api}/docs/")
    assert slashed.status_code == 200 and 'src="swagger-ui-bundle.js"' in slashed.text
    assert httpx.get(f"{api}/docs/LICENSE").status_code == 404


@pytest.mark.parametrize("key", [None, "s3cret-key"])
def test_the_docs_page_renders_every_operation_in_headless_chromium_asking_for_a_key_only_when_one_is_set(
    services: Services, key: str | None
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium is not None, "chromium is not installed")
    assert chromium is not None
    secret = None if key is None else SecretStr(key)
    keyed = Services.from_settings(services.settings.model_copy(update={"api_key": secret}))
    try:
        for url in _serve(keyed):
            # GIVEN the page loaded in a real browser, its scripts run (a virtual time budget lets them finish)
            out = subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--virtual-time-budget=10000",
                    "--dump-dom",
                    f"{url}/docs",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        keyed.close()
    assert out.returncode == 0, out.stderr[-2000:]
    # THEN Swagger UI rendered the document: every operation
    dom = out.stdout
    assert 'class="swagger-ui' in dom
    for route in routes_for(services.settings):
        assert route.operation_id in dom, route.operation_id
    # AND its "Authorize" button (where "Try it out" takes the key) shows only on a keyed API
    assert ("btn authorize" in dom) == (key is not None)


def _response(status: int, body: object, **headers: str) -> HttpResponse:
    media = "application/problem+json" if status >= 400 else "application/json"
    return HttpResponse(status=status, body=json.dumps(body).encode(), headers={"content-type": media, **headers})


def test_the_contract_hook_reports_answers_that_break_their_routes_declaration(services: Services) -> None:
    api = Api(services)
    get_stream = HttpRequest.from_parts("GET", "/streams/3")
    problem = {"type": "urn:contentfn:problem:x", "title": "T", "status": 409, "detail": "d", "code": "x"}
    # a body with a key its model does not declare
    assert "StreamAnswer" in (contract_violation(api, get_stream, _response(200, {"stream": {"id": 3}})) or "")
    # a status the route does not list
    assert "not declared" in (contract_violation(api, get_stream, _response(409, problem)) or "")
    # an error that is not a problem document, and a problem whose status disagrees
    assert contract_violation(api, get_stream, _response(404, {"error": {"code": "not_found"}})) is not None
    assert contract_violation(api, get_stream, _response(404, problem)) is not None
    # a 503 without Retry-After, a 201 without Location
    assert contract_violation(api, get_stream, _response(503, {**problem, "status": 503})) is not None
    post = HttpRequest.from_parts("POST", "/streams")
    assert "Location" in (contract_violation(api, post, _response(201, {"stream": {}})) or "")
    # AND a well-formed refusal passes
    assert contract_violation(api, get_stream, _response(404, {**problem, "status": 404})) is None
