"""What a route is and what its handler receives: the types the route table, the dispatcher and the
OpenAPI generator share. Nothing here imports a handler, so every handler module may import it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel

from functions.api.params import Param
from shared.events import HttpRequest
from shared.services import Services
from shared.store.api_keys import ApiKey, Scope

__all__ = ["Asset", "Call", "Created", "Handler", "Route"]

_ID = r"(?P<id>[0-9]{1,18})"
# A name segment (an artist): anything but '/', percent-decoded by the dispatcher's caller or by Call.name.
_NAME = r"(?P<name>[^/]{1,500})"


@dataclass(frozen=True)
class Call:
    """One matched request: the services, the request, its validated query and its path values."""

    services: Services
    request: HttpRequest
    query: dict[str, Any]
    path: dict[str, str]
    routes: tuple[Route, ...]  # the table the request was matched in (the OpenAPI document describes it)
    key: ApiKey | None = None  # the key the request was made with; None where the API takes no key

    @property
    def id(self) -> int:
        """The ``{id}`` of the path (digits only, bounded by the route's pattern)."""
        return int(self.path["id"])

    @property
    def name(self) -> str:
        """The ``{name}`` of the path, percent-decoded (runtimes hand over the path as sent or decoded;
        decoding a decoded name again only changes one holding a literal '%XX')."""
        return unquote(self.path["name"])


@dataclass(frozen=True)
class Created:
    """A handler's answer for a new resource: 201, its body, and ``Location`` naming where it lives."""

    body: BaseModel
    location: str


@dataclass(frozen=True)
class Asset:
    """A handler's answer that is not JSON (the ``/docs`` page, the console and their files, an
    image's bytes). ``cache`` is its Cache-Control; ``policy`` the Content-Security-Policy of a page
    (None: the core's default for HTML)."""

    content: bytes
    media_type: str
    cache: str = "public, max-age=300"
    policy: str | None = None


# A handler answers with its route's response model (or Created / Asset); it raises ApiError to refuse.
Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class Route:
    """One operation: method and path pattern, the callable that answers it, its query parameters,
    and the pydantic models of its JSON body and of its answer (for validation and the document).

    ``status`` is the success status (201 for a creation); ``errors`` the refusals the handler itself
    raises beyond those the core derives from the route (400 on the query, 401/403/429 on a keyed
    route, 404 on an ``{id}``, 413/415 on a body, 503 when a dependency is down). A ``static`` route
    answers from memory alone; ``media_type`` is what a non-JSON route (an ``Asset``) serves.

    ``scope`` is what a key needs to call the route: a GET defaults to ``read``; any other method must
    name its scope, so a new write route cannot be left callable by a read-only key by omission.

    ``family`` is the template request metrics count a route under where many routes are one family
    (each file of the console is a route of its own, counted as ``/console/{file}``); None: its
    ``pattern``."""

    method: str
    pattern: str
    handler: Handler
    operation_id: str
    summary: str
    params: tuple[Param, ...] = ()
    public: bool = False
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    static: bool = False
    media_type: str = "application/json"
    scope: Scope | None = None
    family: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.scope is None:
            if self.method != "GET" and not self.public:
                raise ValueError(f"route {self.method} {self.pattern} must declare its scope (write or admin)")
            object.__setattr__(self, "scope", "read")
        pattern = re.escape(self.pattern).replace(re.escape("{id}"), _ID).replace(re.escape("{name}"), _NAME)
        object.__setattr__(self, "regex", re.compile("^" + pattern + "$"))

    @property
    def required_scope(self) -> Scope:
        """The scope a key needs for this route (set by ``__post_init__``, never None after it)."""
        return self.scope or "read"

    @property
    def template(self) -> str:
        """What request metrics name this route by: a path template, never a path with values in it."""
        return self.family or self.pattern

    def statuses(self, *, auth: bool) -> dict[int, str]:
        """Every status this operation can answer, with what it means: the OpenAPI document lists
        exactly these, and the test suite checks every answer it receives is one of them."""
        out = {self.status: "Created" if self.status == 201 else "OK", 400: "Invalid request"}
        if auth and not self.public:
            out[401] = "Missing or invalid API key"
            out[403] = f"The key lacks the {self.required_scope!r} scope"
            out[429] = _MEANING[429]
        if "{id}" in self.pattern or 404 in self.errors:
            out[404] = "Not found"
        if self.body is not None:
            out[413] = "Body over the limit"
            out[415] = "Body is not JSON"
        for status in self.errors:
            out.setdefault(status, _MEANING.get(status, "Refused"))
        if not self.static:
            out[503] = "A dependency is unavailable; retry after Retry-After seconds"
        out[500] = "Internal error"
        return dict(sorted(out.items()))


_MEANING = {
    307: "Redirect to a short-lived signed URL of the bytes",
    404: "Not found",
    409: "Conflict with the resource's state",
    413: "Over the limit",
    429: "Too many requests; retry after Retry-After seconds",
}
