"""The web console through the cloud entry points with real-format requests: the page, one of its
scripts, the image route it draws from and an API call it makes, on AWS (API Gateway HTTP API /
function URL events) and on GCP (functions-framework)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image

from local.lambda_context import LocalLambdaContext
from shared.config import Settings
from shared.services import Services
from tests.entry_fixtures import TEST_API_KEY, ff_client, put_local
from tests.event_files import load_event

BUCKET = "contentfn-dev-uploads"


def _png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def seed_image(settings: Settings, services: Services, data: bytes, key: str = "images/red.png") -> int:
    """A detected PNG in the local bucket with its row, as the GPU worker leaves one."""
    put_local(settings, BUCKET, key, data)
    with services.db.connection() as conn:
        row = conn.execute(
            "INSERT INTO images (content_hash, bucket, key, bytes, format, width, height, status)"
            " VALUES (%s, %s, %s, %s, 'png', 64, 48, 'done') RETURNING id",
            (f"h-{key}", BUCKET, key, len(data)),
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def _aws_get(path: str, **headers: str) -> dict[str, Any]:
    event = load_event("aws_function_url_health.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["headers"].update(headers)
    return event


def test_aws_entry_serves_the_console_page_its_script_an_image_and_an_api_call(
    entry_env: Settings, services: Services, lambda_context: LocalLambdaContext
) -> None:
    from functions.api.aws import handler

    data = _png()
    image_id = seed_image(entry_env, services, data)
    # GIVEN the page: HTML under a policy allowing no inline script and no other origin
    page = handler(_aws_get("/", accept="text/html"), lambda_context)
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    policy = page["headers"]["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert 'src="console/app.js"' in page["body"] and page["isBase64Encoded"] is False
    # AND a script it loads, as JavaScript
    script = handler(_aws_get("/console/app.js"), lambda_context)
    assert script["statusCode"] == 200 and script["headers"]["Content-Type"].startswith("text/javascript")
    assert "loadConfig" in script["body"]
    # AND the API call the page makes first (a cloud API always takes a key, so the page asks for it),
    # then an image's bytes with the key, base64-encoded for API Gateway
    config = handler(_aws_get("/console/config"), lambda_context)
    assert json.loads(config["body"]) == {"key_required": True}
    image = handler(_aws_get(f"/images/{image_id}/content", **{"x-api-key": TEST_API_KEY}), lambda_context)
    assert image["statusCode"] == 200 and image["headers"]["Content-Type"] == "image/png"
    assert image["isBase64Encoded"] is True and base64.b64decode(image["body"]) == data
    assert image["headers"]["cache-control"].startswith("private")


def test_gcp_entry_serves_the_console_page_its_stylesheet_an_image_and_asks_for_the_key(
    entry_env: Settings, services: Services, monkeypatch: Any
) -> None:
    secret = "console-key-of-at-least-32-characters"  # a cloud API refuses a shorter one
    monkeypatch.setenv("CONTENTFN_API_KEY", secret)
    data = _png()
    image_id = seed_image(entry_env, services, data)
    client = ff_client("api", "api", "http")
    # GIVEN a keyed API: the page and its files are public, so the page can ask for the key
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    css = client.get("/console/console.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert client.get("/console/config").get_json() == {"key_required": True}
    # WHEN the page calls the API without the key, it is refused; with it (a header), answered
    assert client.get("/stats").status_code == 401
    assert client.get("/stats", headers={"X-API-Key": secret}).get_json()["images"]["total"] == 1
    assert client.get(f"/images/{image_id}/content").status_code == 401
    image = client.get(f"/images/{image_id}/content", headers={"X-API-Key": secret})
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png" and image.data == data
