"""API requests as server spans over real HTTP, exported to a real OTLP receiver: named by route
template, carrying method, route and status, and continuing a caller's W3C trace context."""

from __future__ import annotations

import httpx

from functions.api.core import Api
from local.server import ApiServer
from shared.observability.traces import configure_tracing
from shared.services import Services
from tests.servers.otlp_receiver import OtlpReceiver
from tests.trace_fixtures import otlp_receiver, wait_for_spans  # noqa: F401

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_api_request_continues_the_callers_trace_as_a_server_span_named_by_route(
    services: Services,
    otlp_receiver: OtlpReceiver,  # noqa: F811
) -> None:
    configure_tracing("contentfn-api", otlp_receiver.endpoint)
    server = ApiServer(Api(services), "127.0.0.1", 0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        # GIVEN a caller inside its own sampled trace, asking for a track by id
        headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
        assert httpx.get(base + "/tracks/4242", headers=headers, timeout=10).status_code == 404
        # AND a request with no context, to a path no route serves
        assert httpx.get(base + "/no/such/route", timeout=10).status_code == 404
        # WHEN the spans are flushed
        by_id = wait_for_spans(otlp_receiver, "GET /tracks/{id}", 1)
        unmatched = wait_for_spans(otlp_receiver, "GET unmatched", 1)
    finally:
        server.stop()
    # THEN the request's span is a server span of the caller's trace, its parent the caller's span
    assert len(by_id) == 1, [s.name for s in otlp_receiver.collected()]
    got = by_id[0]
    assert (got.trace_id, got.parent_id, got.kind) == (CALLER_TRACE, CALLER_SPAN, "SERVER")
    assert got.attributes["http.route"] == "/tracks/{id}"
    assert got.attributes["http.request.method"] == "GET"
    assert got.attributes["http.response.status_code"] == 404
    # AND no span is named after a raw path (ids would make a name per track)
    assert not any("4242" in s.name or "/no/such" in s.name for s in otlp_receiver.collected())
    # AND a request without a context starts a trace of its own
    assert len(unmatched) == 1 and unmatched[0].parent_id is None and unmatched[0].trace_id != CALLER_TRACE
