"""What the web console needs from the API, over the real HTTP server and a real database: the page
under a strict Content-Security-Policy, every module it imports registered and served, the public
config saying whether a key is needed, and an image's bytes through the Blob port, behind the key."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr

from functions.api.console import CONSOLE_ASSETS
from functions.api.core import Api
from local.server import ApiServer
from shared.services import Services

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "functions" / "api" / "console"


@pytest.fixture
def keyed(services: Services) -> Iterator[tuple[str, Services]]:
    svc = Services.from_settings(services.settings.model_copy(update={"api_key": SecretStr("k3y")}), migrate=False)
    srv = ApiServer(Api(svc), "127.0.0.1", 0)
    srv.start()
    try:
        yield f"http://127.0.0.1:{srv.port}", svc
    finally:
        srv.stop()
        svc.close()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (0, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _image_row(svc: Services, key: str, size: int, fmt: str | None, status: str) -> int:
    with svc.db.connection() as conn:
        row = conn.execute(
            "INSERT INTO images (content_hash, bucket, key, bytes, format, width, height, status)"
            " VALUES (%s, %s, %s, %s, %s, 32, 24, %s) RETURNING id",
            (f"h-{key}", svc.settings.bucket, key, size, fmt, status),
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def test_the_console_page_allows_only_its_own_scripts_and_every_module_it_imports_is_served(
    keyed: tuple[str, Services],
) -> None:
    url, _ = keyed
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert "http://" not in page.text and "https://" not in page.text and "<script>" not in page.text
    # every file the page and its modules name is registered, served with its type, and nothing else is
    named = set(re.findall(r'(?:href|src)="console/([^"]+)"', page.text))
    for module in CONSOLE_DIR.glob("*.js"):
        named |= set(re.findall(r'from "\./([^"]+)"', module.read_text()))
    assert named <= set(CONSOLE_ASSETS), named - set(CONSOLE_ASSETS)
    assert {p.name for p in CONSOLE_DIR.iterdir() if p.name != "index.html"} == set(CONSOLE_ASSETS)
    for name, media in CONSOLE_ASSETS.items():
        resp = httpx.get(f"{url}/console/{name}")
        assert resp.status_code == 200 and resp.headers["content-type"] == media, name
        assert resp.headers["cache-control"] == "no-cache"
    assert httpx.get(f"{url}/console/index.html").status_code == 404
    assert httpx.get(f"{url}/console/..%2Fconsole.py").status_code == 404
    # AND no module writes markup: every value reaches the page as text
    for module in CONSOLE_DIR.glob("*.js"):
        source = module.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, (module.name, sink)


def test_the_console_config_says_whether_a_key_is_needed(services: Services, keyed: tuple[str, Services]) -> None:
    url, _ = keyed
    assert httpx.get(f"{url}/console/config").json() == {"key_required": True}
    open_srv = ApiServer(Api(services), "127.0.0.1", 0)
    open_srv.start()
    try:
        assert httpx.get(f"http://127.0.0.1:{open_srv.port}/console/config").json() == {"key_required": False}
    finally:
        open_srv.stop()


def test_an_images_bytes_are_served_behind_the_key_under_their_own_media_type(keyed: tuple[str, Services]) -> None:
    url, svc = keyed
    data = _png()
    svc.blob.put(svc.settings.bucket, "images/blue.png", data)
    done = _image_row(svc, "images/blue.png", len(data), "png", "done")
    undecoded = _image_row(svc, "images/odd.bin", 10, None, "rejected")
    gone = _image_row(svc, "images/gone.png", 10, "png", "done")
    key = {"X-API-Key": "k3y"}
    # GIVEN no key, the image is refused; WITH it, its bytes come back as image/png, privately cached
    assert httpx.get(f"{url}/images/{done}/content").status_code == 401
    resp = httpx.get(f"{url}/images/{done}/content", headers=key)
    assert resp.status_code == 200 and resp.content == data
    assert resp.headers["content-type"] == "image/png" and resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "private, max-age=300"
    # AND an image never decoded is not served as anything a browser could run; a missing one is 404
    refused = httpx.get(f"{url}/images/{undecoded}/content", headers=key)
    assert refused.status_code == 409 and refused.json()["code"] == "not_viewable"
    assert httpx.get(f"{url}/images/{gone}/content", headers=key).status_code == 404
    assert httpx.get(f"{url}/images/999999/content", headers=key).status_code == 404
