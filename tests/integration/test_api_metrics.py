"""The local API's /metrics over real HTTP: requests by route template and status, and the store's
figures read per scrape from a real PostgreSQL."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from functions.api.console import CONSOLE_ASSETS
from functions.api.core import Api
from functions.api.docs import DOCS_ASSETS
from local.server import ApiServer
from shared.queue.kinds import JOB_KINDS
from shared.services import Services


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_metrics_name_routes_by_template_and_read_the_store_per_scrape(services: Services) -> None:
    server = ApiServer(Api(services), "127.0.0.1", 0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        # GIVEN requests for two different track ids, a known one missing and an unknown path
        for path in ("/tracks/101", "/tracks/202", "/no/such/thing", "/health"):
            httpx.get(base + path, timeout=10)
        # AND a dead letter in the store
        services.queue.dead_letter("embed", {"x": 1}, "poison for the test")
        # WHEN Prometheus would scrape
        response = httpx.get(base + "/metrics", timeout=10)
    finally:
        server.stop()
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    requests = {
        (labels["route"], labels["status"]): value for labels, value in samples["contentfn_http_requests_total"]
    }
    # THEN both ids count under the route's template (one series, not one per id), by status
    assert requests[("/tracks/{id}", "404")] >= 2
    assert requests[("unmatched", "404")] >= 1 and requests[("/health", "200")] >= 1
    assert not any("101" in route or "202" in route for route, _ in requests)
    # AND the store's figures are there for every job kind, the dead letter counted
    dead = {labels["kind"]: value for labels, value in samples["contentfn_dead_letters"]}
    assert set(dead) >= set(JOB_KINDS) and dead["embed"] == 1
    assert {labels["kind"] for labels, _ in samples["contentfn_queue_depth"]} >= set(JOB_KINDS)
    assert samples["contentfn_llm_budget_used_ratio"] == [({}, 0.0)]


def test_metrics_count_read_side_routes_by_template_and_page_files_as_one_family(services: Services) -> None:
    server = ApiServer(Api(services), "127.0.0.1", 0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        # GIVEN a browse, a recommendation for an unknown track and an absent image's bytes
        assert httpx.get(base + "/tracks", params={"limit": 5}, timeout=10).status_code == 200
        assert httpx.post(base + "/recommend", json={"liked": [999_999]}, timeout=10).status_code == 404
        assert httpx.get(base + "/images/4242/content", timeout=10).status_code == 404
        # AND the console's page with every file it loads, and the reference page's files
        assert httpx.get(base + "/", timeout=10).status_code == 200
        for name in CONSOLE_ASSETS:
            assert httpx.get(f"{base}/console/{name}", timeout=10).status_code == 200
        for name in DOCS_ASSETS:
            assert httpx.get(f"{base}/docs/{name}", timeout=10).status_code == 200
        # WHEN Prometheus would scrape
        text = httpx.get(base + "/metrics", timeout=10).text
    finally:
        server.stop()
    samples = _samples(text)
    requests = {
        (labels["route"], labels["method"], labels["status"]): value
        for labels, value in samples["contentfn_http_requests_total"]
    }
    # THEN the read-side routes count under their templates, with their method and status
    assert requests[("/tracks", "GET", "200")] >= 1
    assert requests[("/recommend", "POST", "404")] >= 1
    assert requests[("/images/{id}/content", "GET", "404")] >= 1 and requests[("/", "GET", "200")] >= 1
    # AND every file of a page is one series of its family, however many files there are
    assert requests[("/console/{file}", "GET", "200")] >= len(CONSOLE_ASSETS)
    assert requests[("/docs/{file}", "GET", "200")] >= len(DOCS_ASSETS)
    routes = {route for route, _, _ in requests}
    assert not any(route.startswith(("/console/", "/docs/")) and "{file}" not in route for route in routes)
    latency_routes = {labels["route"] for labels, _ in samples["contentfn_http_request_duration_seconds_count"]}
    assert not any(name in route for route in latency_routes for name in (*CONSOLE_ASSETS, *DOCS_ASSETS))


def test_metrics_refuses_other_methods_with_a_problem_naming_get(services: Services) -> None:
    server = ApiServer(Api(services), "127.0.0.1", 0)
    server.start()
    try:
        # GIVEN the local API; WHEN /metrics is posted to, and asked for its head
        refused = httpx.post(f"http://127.0.0.1:{server.port}/metrics", content=b"x", timeout=10)
        head = httpx.head(f"http://127.0.0.1:{server.port}/metrics", timeout=10)
    finally:
        server.stop()
    # THEN the refusal is a problem document as every other refusal of the API, with Allow
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["status"] == 405
    # AND HEAD answers as GET would, without a body
    assert head.status_code == 200 and head.content == b""
