"""/healthz and /metrics over plain HTTP (stdlib server: the worker image carries no web framework)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HealthServer"]

log = logging.getLogger(__name__)


class HealthServer:
    """Serves ``worker.health()`` at /healthz (503 while draining) and ``worker.prometheus()`` at /metrics."""

    def __init__(
        self,
        worker: Any,
        host: str,
        port: int,
        *,
        extra: Callable[[], dict[str, Any]] | None = None,
        more_metrics: Callable[[], str] | None = None,
    ) -> None:
        """``extra``: more figures for /healthz, laid over the worker's; ``more_metrics``: more
        families for /metrics, after the worker's (the store's queue and dead-letter figures)."""
        self.worker = worker

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    if self.path == "/healthz":
                        health = worker.health()
                        if extra is not None:
                            health = {**health, **extra()}
                        code = 200 if health["status"] == "ok" else 503
                        self._send(code, "application/json", json.dumps(health).encode())
                    elif self.path == "/metrics":
                        text = worker.prometheus() + (more_metrics() if more_metrics is not None else "")
                        self._send(200, "text/plain; version=0.0.4", text.encode())
                    else:
                        self._send(404, "application/json", b'{"error":"not found"}')
                except Exception:
                    log.exception("health endpoint failed")
                    self._send(503, "application/json", b'{"error":"unavailable"}')

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="gpu-health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
