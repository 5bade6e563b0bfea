"""The web console: a static single-page app served by the API itself at ``/``, so it is there
wherever the API is (the local server, the GCP function, the AWS function) and needs no CDN.

The page is plain HTML and ES modules from this package (``console/``), with no build step. It reads
only the public API, with the key the user typed kept in the browser's session storage and sent as
``X-API-Key``. ``/console/config`` is public so the page knows whether to ask for a key at all.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from functions.api.errors import not_found
from functions.api.routing import Asset, Call

__all__ = ["CONSOLE_ASSETS", "CONSOLE_POLICY", "ConsoleConfig", "console_asset", "console_config", "console_page"]

# Installed as package data (pyproject), beside this module.
_ROOT = Path(__file__).resolve().parent / "console"

_JS = "text/javascript; charset=utf-8"
# Every file the page loads, by the name it is served under (/console/<name>), with its media type.
CONSOLE_ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "app.js": _JS,
    "api.js": _JS,
    "dom.js": _JS,
    "chart.js": _JS,
    "boxes.js": _JS,
    "search.js": _JS,
    "track.js": _JS,
    "images.js": _JS,
    "streams.js": _JS,
    "operations.js": _JS,
    "artist.js": _JS,
    "uploads.js": _JS,
}

# Scripts and styles only from this origin, no inline script or style, no other origin to talk to;
# images are drawn from blob: URLs the page makes of bytes it fetched with the key.
CONSOLE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The files change with the package; revalidating each load keeps an upgraded API and an old
# cached script from meeting.
_CACHE = "no-cache"


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_required: bool = Field(description="whether API calls need X-API-Key (the page asks for it once)")


@cache
def _read(name: str) -> bytes:
    return _ROOT.joinpath(name).read_bytes()


def console_page(call: Call) -> Asset:
    return Asset(_read("index.html"), "text/html; charset=utf-8", cache=_CACHE, policy=_policy(call))


def _policy(call: Call) -> str:
    """The page's policy; where the store signs URLs (the cloud), the bucket's origin is added for
    the two things the page does there: PUT an upload (connect-src) and show an image (img-src)."""
    origin = call.services.blob.signed_origin(call.services.settings.bucket)
    if origin is None:
        return CONSOLE_POLICY
    return CONSOLE_POLICY.replace("img-src 'self' blob:", f"img-src 'self' blob: {origin}").replace(
        "connect-src 'self'", f"connect-src 'self' {origin}"
    )


def console_asset(call: Call) -> Asset:
    name = call.request.path.rstrip("/").rsplit("/", 1)[-1]
    if name not in CONSOLE_ASSETS:
        raise not_found("file")
    return Asset(_read(name), CONSOLE_ASSETS[name], cache=_CACHE)


def console_config(call: Call) -> ConsoleConfig:
    return ConsoleConfig(key_required=call.services.settings.api_auth)
