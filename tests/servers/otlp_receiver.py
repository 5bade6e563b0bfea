"""An OTLP/HTTP trace receiver: ``POST /v1/traces`` with a protobuf ``ExportTraceServiceRequest``
(what ``opentelemetry-exporter-otlp-proto-http`` sends), decoded with ``opentelemetry-proto`` and
kept as plain :class:`ReceivedSpan` records for the tests to join into traces."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.servers import Handled, LocalServer, Seen

__all__ = ["OtlpReceiver", "ReceivedSpan"]

_PROTOBUF = "application/x-protobuf"
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    attributes: dict[str, object]
    links: tuple[tuple[str, str], ...]  # (trace id, span id) of each link
    start_ns: int
    end_ns: int
    error: bool


def _value(any_value: AnyValue) -> object:
    field = any_value.WhichOneof("value")
    return getattr(any_value, field) if field else None


class OtlpReceiver(LocalServer):
    """Collects every span exported to it; answers 200 with an empty ``ExportTraceServiceResponse``."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[ReceivedSpan] = []
        self._spans_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.url  # the exporter adds /v1/traces

    def handle(self, seen: Seen, handler: BaseHTTPRequestHandler) -> Handled | None:
        if seen.method != "POST" or seen.path != "/v1/traces":
            return Handled(404, b"")
        body = gzip.decompress(seen.body) if seen.headers.get("content-encoding") == "gzip" else seen.body
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex() or None,
                            name=s.name,
                            kind=_KINDS.get(s.kind, str(s.kind)),
                            service=str(resource.get("service.name", "")),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in s.links),
                            start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano,
                            error=s.status.code == 2,
                        )
                    )
        with self._spans_lock:
            self.spans.extend(received)
        return Handled(200, ExportTraceServiceResponse().SerializeToString(), content_type=_PROTOBUF)

    def collected(self) -> list[ReceivedSpan]:
        with self._spans_lock:
            return list(self.spans)

    def wait_for(self, name: str, *, count: int = 1, timeout_s: float = 30.0) -> list[ReceivedSpan]:
        """The spans named ``name`` once at least ``count`` arrived (fewer when time ran out)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [s for s in self.collected() if s.name == name]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.collected() if s.trace_id == trace_id]


class _CountingReceiver(OtlpReceiver):
    """The receiver as a process of its own (a benchmark's collector): ``GET /count`` says how many
    spans arrived; span bodies are not kept."""

    def handle(self, seen: Seen, handler: BaseHTTPRequestHandler) -> Handled | None:
        if seen.method == "GET" and seen.path == "/count":
            with self._spans_lock:
                return Handled(200, str(len(self.spans)).encode(), content_type="text/plain")
        answer = super().handle(seen, handler)
        with self._lock:
            self.seen.clear()
        return answer


def main() -> None:
    """Serve until standard input closes; the first line printed is the endpoint."""
    import sys

    receiver = _CountingReceiver()
    receiver.start()
    print(receiver.endpoint, flush=True)
    try:
        sys.stdin.read()
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
