"""``/docs``: the interactive reference (Swagger UI) over ``/openapi.json``, served from files vendored
in this package (``static/``), so the page needs no CDN and works on a private network."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from functions.api.errors import not_found
from functions.api.routing import Asset, Call

__all__ = ["DOCS_ASSETS", "docs_asset", "docs_page"]

# Installed as package data (pyproject), beside this module.
_STATIC = Path(__file__).resolve().parent / "static"

# What the page loads, by the name it is served under, with its media type.
DOCS_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "docs-init.js": "text/javascript; charset=utf-8",
}
_FILES = {
    "swagger-ui.css": "swagger-ui/swagger-ui.css",
    "swagger-ui-bundle.js": "swagger-ui/swagger-ui-bundle.js",
    "docs-init.js": "docs-init.js",
}


@cache
def _read(relative: str) -> bytes:
    return _STATIC.joinpath(*relative.split("/")).read_bytes()


def docs_page(call: Call) -> Asset:
    # Asset links are relative, so the page works wherever the API is mounted (a stage prefix);
    # from "/docs/" they are one level nearer than from "/docs".
    prefix = b"" if call.request.path.endswith("/") else b"docs/"
    return Asset(_read("docs.html").replace(b"{prefix}", prefix), "text/html; charset=utf-8")


def docs_asset(call: Call) -> Asset:
    name = call.request.path.rstrip("/").rsplit("/", 1)[-1]
    if name not in _FILES:
        raise not_found("file")
    return Asset(_read(_FILES[name]), DOCS_ASSETS[name])
