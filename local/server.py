"""The local HTTP server: Starlette + uvicorn around the framework-neutral API core.

One catch-all Starlette route hands every request to the core, which matches it against the route
table (:mod:`functions.api.routes`) exactly as on GCP and AWS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from functions.api.core import Api
from functions.api.uploads import DIRECT_UPLOAD
from shared.events import HttpRequest
from shared.metrics import exposition
from shared.metrics.state import watch_store

__all__ = ["MAX_BODY_BYTES", "ApiServer", "create_app"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def create_app(api: Api) -> Starlette:
    upload_cap = api.services.settings.max_upload_bytes

    async def dispatch(request: Request) -> Response:
        # A file's bytes sent to the API itself (PUT /uploads, where the store signs no URL) may be as
        # large as an upload; every other body is small JSON.
        # The path as sent: a name segment holding an encoded '/' (an artist "AC/DC") stays one
        # segment; the core decodes it (Call.name).
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else request.url.path
        route = api.route_for(HttpRequest(method=request.method, path=path))
        cap = upload_cap if route is not None and route.operation_id == DIRECT_UPLOAD else MAX_BODY_BYTES
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            return _too_large()
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                return _too_large()
        req = HttpRequest.from_parts(
            request.method, path, request.url.query, dict(request.headers.items()), bytes(body)
        )
        # The core is synchronous (psycopg pool, onnxruntime); keep it off the event loop.
        resp = await run_in_threadpool(api.handle, req)
        if resp.stream is not None:
            if request.method == "HEAD":
                await run_in_threadpool(_close, resp.stream)
                return Response(b"", resp.status, headers=resp.headers)
            return StreamingResponse(_chunks(resp.stream), resp.status, headers=resp.headers)
        return Response(resp.body if request.method != "HEAD" else b"", resp.status, headers=resp.headers)

    # The store's figures (queue depth and age, dead letters, LLM budget) are read per scrape.
    store_registry = CollectorRegistry(auto_describe=False)
    watch_store(store_registry, api.services.db, api.services.settings.llm_daily_token_budget)

    async def metrics(request: Request) -> Response:
        # Unauthenticated like /health: Prometheus scrapes it, and the server binds to loopback by
        # default. Not in the route table: a function in the cloud reports its figures otherwise
        # (EMF, OTLP), so only this server has a registry worth scraping. The store queries run off
        # the event loop.
        if request.method not in ("GET", "HEAD"):
            # Refused as the core refuses any other method: a problem document naming what is allowed.
            refused = Api.refusal(405, "method_not_allowed", "method not allowed; use GET, HEAD")
            return Response(refused.body, refused.status, headers={**refused.headers, "allow": "GET, HEAD"})
        body = exposition() + await run_in_threadpool(generate_latest, store_registry)
        return Response(body if request.method == "GET" else b"", 200, media_type=CONTENT_TYPE_LATEST)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(
        routes=[Route("/metrics", metrics, methods=methods), Route("/{path:path}", dispatch, methods=methods)]
    )


async def _chunks(stream: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A streamed body, each chunk read off the event loop; the stream is closed however sending ends
    (a client that goes away included), which frees the export's cursor and connection."""
    try:
        while True:
            chunk = await run_in_threadpool(next, stream, None)
            if chunk is None:
                return
            yield chunk
    finally:
        # Not awaited: when the client went away this scope is cancelled, and an await would raise
        # before the close ran. The generator is idle here (a worker thread's next() is waited for).
        _close(stream)


def _close(stream: Iterator[bytes]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def _too_large() -> Response:
    refused = Api.refusal(413, "too_large", "request body over the limit")
    return Response(refused.body, refused.status, headers=refused.headers)


class ApiServer:
    """uvicorn on a background thread, so the local runtime can run workers beside it."""

    def __init__(self, api: Api, host: str, port: int) -> None:
        config = uvicorn.Config(create_app(api), host=host, port=port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="api-server", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start (is the port in use?)")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        for srv in servers:
            for sock in srv.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    def stop(self) -> None:
        """Stop serving; a server never started has nothing to stop."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(10)
