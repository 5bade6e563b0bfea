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

__all__ = ["Call", "Handler", "Route"]

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

    @property
    def id(self) -> int:
        """The ``{id}`` of the path (digits only, bounded by the route's pattern)."""
        return int(self.path["id"])

    @property
    def name(self) -> str:
        """The ``{name}`` of the path, percent-decoded (runtimes hand over the path as sent or decoded;
        decoding a decoded name again only changes one holding a literal '%XX')."""
        return unquote(self.path["name"])


# A handler answers with a JSON-serialisable value or a pydantic model; it raises ApiError to refuse.
Handler = Callable[[Call], Any]


@dataclass(frozen=True)
class Route:
    """One operation: method and path pattern, the callable that answers it, its query parameters,
    and the pydantic models of its JSON body and of its answer (for validation and the document)."""

    method: str
    pattern: str
    handler: Handler
    operation_id: str
    summary: str
    params: tuple[Param, ...] = ()
    public: bool = False
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = self.pattern.replace("{id}", _ID).replace("{name}", _NAME)
        object.__setattr__(self, "regex", re.compile("^" + pattern + "$"))
