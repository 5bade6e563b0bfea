"""The OTLP push of a function's metrics on GCP: Managed Prometheus reads OTLP through Cloud
Monitoring's endpoint (or a collector's in the VPC). A module of its own because Google's endpoint
takes a token from ``google.auth``, which only the GCP functions install.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry

from shared.metrics import REGISTRY
from shared.metrics.export import otlp_request

__all__ = ["OtlpPusher"]

_GOOGLE_SCOPES = ("https://www.googleapis.com/auth/monitoring.write",)


class OtlpPusher:
    """The registry, cumulative, to an OTLP/HTTP metrics endpoint at most every ``interval_s``
    (cumulative points make a skipped push lossless). Google's endpoint gets an access token from
    the function's service account."""

    def __init__(
        self,
        endpoint: str,
        resource: Mapping[str, str],
        *,
        interval_s: float = 10.0,
        headers: Callable[[], Mapping[str, str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.resource = dict(resource)
        self.interval_s = interval_s
        self.started_ns = time.time_ns()
        self._headers = headers if headers is not None else _google_headers(endpoint)
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def push(self, *, force: bool = False, registry: CollectorRegistry | None = None) -> bool:
        """Push the product's registry, or ``registry`` (the store's figures) — each at most once
        per interval unless ``force``d."""
        channel = "product" if registry is None else "store"
        with self._lock:
            now = self._clock()
            if not force and now - self._last.get(channel, float("-inf")) < self.interval_s:
                return False
            self._last[channel] = now
        import httpx

        request = otlp_request(self.resource, start_ns=self.started_ns, registry=registry or REGISTRY)
        body = request.SerializeToString()
        headers = {"content-type": "application/x-protobuf", **(self._headers() if self._headers else {})}
        response = httpx.post(self.endpoint, content=body, headers=headers, timeout=5.0)
        response.raise_for_status()
        return True


def _google_headers(endpoint: str) -> Callable[[], Mapping[str, str]] | None:
    host = urlsplit(endpoint).hostname or ""
    if not host.endswith(".googleapis.com"):
        return None  # a collector in the VPC: no token
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=list(_GOOGLE_SCOPES))
    lock = threading.Lock()

    def headers() -> Mapping[str, str]:
        with lock:
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())
            return {"authorization": f"Bearer {credentials.token}"}

    return headers
