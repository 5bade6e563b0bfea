"""A typed client of the product's own HTTP API, for the read commands of the CLI.

One client, two transports: HTTP to a deployed API (``--api URL``, the key sent as ``X-API-Key``),
or the API core called in process against the configured database. Both answer through the same
route table, handlers and response models (:mod:`functions.api`), so a command prints the same JSON
either way. Lists follow the API's cursor pagination (:mod:`functions.api.paging`); a refusal is
an RFC 9457 problem, raised as :class:`ApiProblem`; a transport failure as :class:`ApiUnreachable`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click
import httpx
from pydantic import BaseModel, ValidationError

from functions.api.browse import TrackPage
from functions.api.dead import DeadJobAnswer, DeadJobPage
from functions.api.models import ModelList
from functions.api.objects import ObjectTraceView
from functions.api.profile import TrackProfile
from functions.api.status import Stats
from functions.api.tracks import SearchResults

if TYPE_CHECKING:
    from functions.api.core import Api

__all__ = [
    "ApiAnswerUnknown",
    "ApiClient",
    "ApiProblem",
    "ApiUnreachable",
    "InProcessTransport",
    "Query",
    "json_document",
    "ndjson_lines",
    "or_not_found",
]

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")
# Query values as the API takes them; None leaves a parameter out.
Query = dict[str, str | int | None]

# A search embeds its text and a first export page waits for its query: reads get longer than connects.
_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=120.0)
# Where the in-process transport pretends to live; never resolved.
_IN_PROCESS = "http://in-process"


class ApiProblem(Exception):
    """The API refused: the status and the RFC 9457 problem's title and detail."""

    def __init__(self, method: str, path: str, status: int, title: str, detail: str, code: str | None) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.method, self.path = method, path
        self.status, self.title, self.detail, self.code = status, title, detail, code


def or_not_found(call: Callable[[], _T], message: str) -> _T:
    """What ``call`` answers; a 404 from the API becomes one error line, ``message``, for the CLI."""
    try:
        return call()
    except ApiProblem as exc:
        if exc.status == 404:
            raise click.ClickException(message) from None
        raise


class ApiUnreachable(Exception):
    """No answer came back: the URL is wrong, the API is down, or the connection broke."""


class ApiAnswerUnknown(Exception):
    """An answer came back that the API's response models do not describe (a version apart)."""


class ApiClient:
    """The read side of the API, typed by its own response models."""

    def __init__(self, http: httpx.Client, *, where: str, page_size: int = 1000) -> None:
        self._http = http
        self.where = where  # what error lines name: the URL, or "the local database"
        # The most items asked for per page (each route caps it lower where it must).
        self.page_size = page_size

    @classmethod
    def remote(cls, url: str, key: str | None, *, page_size: int = 1000) -> ApiClient:
        headers = {"accept": "application/json"}
        if key:
            headers["x-api-key"] = key
        # The base URL may carry a path (an API Gateway stage): requests append to it.
        http = httpx.Client(base_url=url.rstrip("/") + "/", headers=headers, timeout=_TIMEOUT, follow_redirects=False)
        return cls(http, where=url, page_size=page_size)

    @classmethod
    def in_process(cls, api: Api) -> ApiClient:
        return cls(httpx.Client(base_url=_IN_PROCESS, transport=InProcessTransport(api)), where="the local database")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the read routes -----------------------------------------------------------------------
    def search(self, text: str, *, k: int, mode: str, filters: Query) -> SearchResults:
        return self._get("search", SearchResults, {"q": text, "k": k, "mode": mode, **filters})

    def stats(self) -> Stats:
        return self._get("stats", Stats)

    def track(self, track_id: int) -> TrackProfile:
        return self._get(f"tracks/{track_id}", TrackProfile)

    def tracks(self, *, filters: Query, sort: str, limit: int) -> TrackPage:
        """Up to ``limit`` tracks, following cursors; ``next_cursor`` continues after the last one."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = self._get(
                "tracks",
                TrackPage,
                {**filters, "sort": sort, "limit": min(limit - len(items), self.page_size, 500), "cursor": cursor},
            )
            items.extend(page.items)
            cursor = page.next_cursor
            if cursor is None or len(items) >= limit:
                return TrackPage(items=items, next_cursor=cursor)

    def trace(self, key: str, bucket: str | None) -> ObjectTraceView:
        """The object's whole trace: every page of its tracks (or image) in one document."""
        first: ObjectTraceView | None = None
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = self._get(
                "objects", ObjectTraceView, {"key": key, "bucket": bucket, "limit": self.page_size, "cursor": cursor}
            )
            first = first or page
            items.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return first.model_copy(update={"items": items, "next_cursor": None})

    def dead_jobs(self, *, kind: str | None, limit: int) -> DeadJobPage:
        """Up to ``limit`` dead jobs, newest first, following cursors."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = self._get(
                "dead-jobs",
                DeadJobPage,
                {"kind": kind, "limit": min(limit - len(items), self.page_size), "cursor": cursor},
            )
            items.extend(page.items)
            cursor = page.next_cursor
            if cursor is None or len(items) >= limit:
                return page.model_copy(update={"items": items, "next_cursor": cursor})

    def dead_job(self, dead_id: int) -> DeadJobAnswer:
        return self._get(f"dead-jobs/{dead_id}", DeadJobAnswer)

    def models(self) -> ModelList:
        return self._get("admin/models", ModelList)

    @contextmanager
    def export_lines(self, query: Query) -> Iterator[Iterator[bytes]]:
        """The export's NDJSON lines as they arrive (each with its newline); memory stays flat."""
        path = "export"
        try:
            with self._http.stream("GET", path, params=_params(query)) as response:
                self._check(response, path, streamed=True)
                yield ndjson_lines(response.iter_bytes())
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    # -- plumbing ------------------------------------------------------------------------------
    def _get(self, path: str, model: type[_M], query: Query | None = None) -> _M:
        try:
            response = self._http.get(path, params=_params(query or {}))
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self._check(response, path)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApiAnswerUnknown(
                f"the answer of {self.where} to GET /{path} is not a {model.__name__} this CLI knows"
                f" ({exc.error_count()} field errors): are the CLI and the API the same version?"
            ) from None

    def _check(self, response: httpx.Response, path: str, *, streamed: bool = False) -> None:
        if response.is_redirect:
            where = response.headers.get("location", "elsewhere")
            raise ApiProblem("GET", path, response.status_code, response.reason_phrase, f"moved to {where}", None)
        if response.status_code < 400:
            return
        if streamed:
            response.read()
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or "title" not in doc:
            # Not the API's own refusal: a proxy, a load balancer or the wrong URL answered.
            raise ApiProblem("GET", path, response.status_code, response.reason_phrase or "error", "", None)
        raise ApiProblem(
            "GET",
            path,
            int(doc.get("status", response.status_code)),
            str(doc["title"]),
            str(doc.get("detail", "")),
            None if doc.get("code") is None else str(doc["code"]),
        )

    def _unreachable(self, exc: httpx.TransportError) -> ApiUnreachable:
        reason = str(exc) or type(exc).__name__
        return ApiUnreachable(f"cannot reach the API at {self.where}: {reason}")


def ndjson_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Whole lines (newline kept) out of chunks cut anywhere; a last line without one still counts."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest


def _params(query: Query) -> dict[str, str | int]:
    return {k: v for k, v in query.items() if v is not None}


class InProcessTransport(httpx.BaseTransport):
    """httpx requests answered by the API core in this process: no server, no port, no key (the
    caller reaches the database itself, so it holds more than any key would grant)."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from shared.events import HttpRequest

        req = HttpRequest.from_parts(
            request.method,
            request.url.path,
            request.url.query.decode("ascii"),
            dict(request.headers.items()),
            request.read(),
        )
        answer = self._api.handle(req)
        if answer.stream is not None:
            return httpx.Response(answer.status, headers=answer.headers, stream=_Chunks(answer.stream))
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)


class _Chunks(httpx.SyncByteStream):
    """A streamed answer's chunks; closing it closes the core's stream (its database cursor)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def json_document(model: BaseModel) -> str:
    """A response model as the API serialises it, as one indented JSON document."""
    return json.dumps(model.model_dump(mode="json"), ensure_ascii=False, indent=2)
