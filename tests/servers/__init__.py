"""Real HTTP servers on 127.0.0.1 written for the tests: a Genius-compatible/JSON-feed source, an
OpenAI-compatible LLM, a Spotify-compatible metadata API.

Each runs a ``ThreadingHTTPServer`` in a daemon thread on a free port, records what it was asked,
and can be told to misbehave (429 with Retry-After, 500s, malformed answers, hangs, endless bodies).
Every loop in them is bounded, and ``stop()`` wakes any request that is hanging.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Handled", "LocalServer", "Seen"]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Handled:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] | None = None
    content_type: str = "application/json"

    @classmethod
    def json(cls, doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handled:
        return cls(status, json.dumps(doc).encode(), headers)


class LocalServer:
    """Subclasses implement ``handle(seen) -> Handled`` (or write to the handler themselves)."""

    def __init__(self, port: int = 0) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    split.path,
                    parse_qs(split.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                with owner._lock:
                    owner.seen.append(seen)
                try:
                    result = owner.handle(seen, self)
                    if result is None:
                        return
                    self.send_response(result.status)
                    self.send_header("content-type", result.content_type)
                    self.send_header("content-length", str(len(result.body)))
                    for k, v in (result.headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(result.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = _any
            do_POST = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests_to(self, prefix: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith(prefix)]

    def handle(self, seen: Seen, handler: BaseHTTPRequestHandler) -> Handled | None:
        raise NotImplementedError

    def hang(self, seconds: float) -> None:
        """Hold the request open (bounded), waking early when the server stops."""
        self.stopping.wait(seconds)
