"""The local API's /metrics over real HTTP: requests by route template and status, and the store's
figures read per scrape from a real PostgreSQL."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from functions.api.core import Api
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
