"""``POST /analyze`` through the API core: ad-hoc text, stored tracks, auth, bad bodies, the LLM down."""

from __future__ import annotations

import json
from collections.abc import Callable

from functions.api.core import Api
from shared.events import HttpRequest, HttpResponse
from shared.services import Services
from tests.intel_fixtures import intel_services, llm_server, redis_session, sample_rows  # noqa: F401
from tests.servers.llm_server import LlmServer

KEY = "api-key-1"


def post(api: Api, body: object, *, key: str | None = KEY, content_type: str = "application/json") -> HttpResponse:
    headers = {"content-type": content_type}
    if key:
        headers["x-api-key"] = key
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.handle(HttpRequest.from_parts("POST", "/analyze", "", headers, raw))


def make_api(factory: Callable[..., Services], server: LlmServer | None = None) -> Api:
    extra = {"llm_base_url": server.url, "llm_api_key": "test-key", "llm_model": "m"} if server else {}
    return Api(factory(api_key=KEY, **extra))


def test_ad_hoc_text_is_analysed_by_the_llm_when_rules_are_unsure(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    api = make_api(intel_services, llm_server)
    lyrics = sample_rows(1)[0]["lyrics"]
    response = post(api, {"text": lyrics, "artist": "A", "title": "T"})
    doc = json.loads(response.body)
    assert response.status == 200, doc
    assert doc["analyzer"] == "llm:m" and 1 <= doc["profile"]["quality"] <= 10
    assert json.loads(post(api, {"text": lyrics, "artist": "A", "title": "T"}).body)["cached"] is True
    assert llm_server.completions() == 1
    # AND /stats shows today's paid call, its tokens and the budget it drew on
    stats = json.loads(api.handle(HttpRequest.from_parts("GET", "/stats", "", {"x-api-key": KEY})).body)
    llm = stats["llm_today"]
    assert llm["calls"] == 1 and llm["ok"] == 1 and llm["tokens"] > 0
    assert llm["budget"] is not None and llm["budget"]["used"] == llm["tokens"]


def test_with_the_llm_down_the_answer_is_the_flagged_rule_result(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    llm_server.mode = "500"
    api = make_api(intel_services, llm_server)
    for row in sample_rows(5):
        response = post(api, {"text": row["lyrics"]})
        doc = json.loads(response.body)
        assert response.status == 200 and doc["fallback"] is True and doc["analyzer"] == "rules"


def test_with_the_llm_down_a_repeated_text_is_the_fallback_answered_from_the_cache_and_flagged_cached(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    # GIVEN the LLM is down and a text the rules are unsure of (auto mode escalates it)
    llm_server.mode = "500"
    api = make_api(intel_services, llm_server)
    body = {"text": sample_rows(1)[0]["lyrics"], "artist": "A", "title": "T"}
    # WHEN it is analysed the first time, THEN the rule-based fallback is computed, not cached
    first = post(api, body)
    doc = json.loads(first.body)
    assert first.status == 200 and doc["fallback"] is True and doc["analyzer"] == "rules", doc
    assert doc["cached"] is False
    # WHEN it is analysed again, THEN the same fallback comes from the analysis cache and says so
    again = json.loads(post(api, body).body)
    assert again["fallback"] is True and again["analyzer"] == "rules"
    assert again["cached"] is True
    assert again["profile"] == doc["profile"] and again["content_hash"] == doc["content_hash"]


def test_rules_mode_and_stored_tracks(intel_services: Callable[..., Services]) -> None:  # noqa: F811
    api = make_api(intel_services)
    assert json.loads(post(api, {"text": "la la la\nla la la\nla la la", "mode": "rules"}).body)["analyzer"] == "rules"
    assert post(api, {"track_id": 12345}).status == 404


def test_bad_requests_are_refused_without_echoing_them(intel_services: Callable[..., Services]) -> None:  # noqa: F811
    api = make_api(intel_services)
    secret = "my-very-private-lyric"
    assert post(api, {"text": secret}, key=None).status == 401
    assert post(api, {"text": secret}, content_type="text/plain").status == 415
    for body in (b"{not json " + secret.encode(), {"text": secret, "track_id": 1}, {"text": secret, "mode": "x"}, {}):
        response = post(api, body)
        assert response.status == 400 and secret.encode() not in response.body
    too_long = post(api, {"text": "word " * 5000})
    assert too_long.status == 413
    assert api.handle(HttpRequest.from_parts("GET", "/analyze", "", {"x-api-key": KEY})).status == 405


def test_openapi_lists_the_analyze_route(intel_services: Callable[..., Services]) -> None:  # noqa: F811
    api = make_api(intel_services)
    doc = json.loads(api.handle(HttpRequest.from_parts("GET", "/openapi.json")).body)
    assert "post" in doc["paths"]["/analyze"]
