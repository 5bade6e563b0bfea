"""The safe HTTP client against a real local server: retries, Retry-After, size and time caps,
redirects to internal addresses."""

from __future__ import annotations

import time

import pytest

from shared.net import (
    AddressPolicy,
    ResponseTooLarge,
    SafeHttpClient,
    UpstreamRejected,
    UpstreamUnavailable,
    UrlRefused,
)
from shared.net.ratelimit import HostRateLimiter
from tests.intel_fixtures import source_server  # noqa: F401
from tests.servers.source_server import SourceServer


def loopback_client(**kw: object) -> SafeHttpClient:
    args: dict[str, object] = {
        "policy": AddressPolicy.from_networks(["127.0.0.1/32"]),
        "limiter": HostRateLimiter(100, 20),
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.2,
        "max_retries": 3,
        "timeout_s": 2.0,
    }
    args.update(kw)
    return SafeHttpClient(**args)  # type: ignore[arg-type]


def test_429_is_retried_after_the_retry_after_delay(source_server: SourceServer) -> None:  # noqa: F811
    source_server.throttle["/feed"] = 1
    started = time.monotonic()
    result = loopback_client().get(source_server.url + "/feed")
    assert result.status == 200
    hits = source_server.requests_to("/feed")
    assert len(hits) == 2
    assert hits[1].at - hits[0].at >= 0.95  # Retry-After: 1
    assert time.monotonic() - started < 3


def test_500s_are_retried_with_backoff_then_give_up(source_server: SourceServer) -> None:  # noqa: F811
    source_server.errors["/feed"] = 2
    assert loopback_client().get(source_server.url + "/feed").status == 200
    source_server.errors["/feed"] = 10
    with pytest.raises(UpstreamUnavailable) as info:
        loopback_client(max_retries=2).get(source_server.url + "/feed")
    assert info.value.status == 500
    assert len(source_server.requests_to("/feed")) == 3 + 3  # bounded: 1 + 2 retries


def test_a_404_is_not_retried(source_server: SourceServer) -> None:  # noqa: F811
    with pytest.raises(UpstreamRejected) as info:
        loopback_client().get(source_server.url + "/nothing-here")
    assert info.value.status == 404
    assert len(source_server.requests_to("/nothing-here")) == 1


def test_an_endless_body_is_cut_at_the_size_cap(source_server: SourceServer) -> None:  # noqa: F811
    started = time.monotonic()
    with pytest.raises(ResponseTooLarge):
        loopback_client(max_bytes=256 * 1024).get(source_server.url + "/endless")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/feed",  # loopback, but outside the allowlisted 127.0.0.1/32
        "http://2130706434:{port}/feed",  # 127.0.0.2 written as a decimal
        "http://[::ffff:127.0.0.1]:{port}/feed",  # IPv4-mapped IPv6
        "http://[::7f00:1]:{port}/feed",  # IPv4-compatible IPv6 for 127.0.0.1 (global to Python 3.11)
        "http://[fec0::1]:{port}/feed",  # deprecated site-local (global to Python 3.11)
        "http://[64:ff9b:1::7f00:1]:{port}/feed",  # local-use NAT64 (global to Python 3.11)
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
    ],
)
def test_redirects_to_internal_addresses_are_refused(source_server: SourceServer, target: str) -> None:  # noqa: F811
    source_server.redirect_to = target.format(port=source_server.port)
    with pytest.raises(UrlRefused):
        loopback_client().get(source_server.url + "/redirect")
    assert len(source_server.requests_to("/redirect")) == 1
    assert source_server.requests_to("/feed") == []


def test_without_the_allowlist_the_test_server_itself_is_refused(source_server: SourceServer) -> None:  # noqa: F811
    with pytest.raises(UrlRefused, match="loopback"):
        loopback_client(policy=AddressPolicy()).get(source_server.url + "/feed")
    assert source_server.seen == []


def test_a_429_with_retry_after_slows_every_later_call_to_that_host(source_server: SourceServer) -> None:  # noqa: F811
    limiter = HostRateLimiter(100, 20)
    c = loopback_client(limiter=limiter, max_retries=0)
    source_server.throttle["/feed"] = 1
    with pytest.raises(UpstreamUnavailable):
        c.get(source_server.url + "/feed")
    started = time.monotonic()
    c.get(source_server.url + "/feed")
    assert time.monotonic() - started >= 0.9  # waited out the Retry-After before asking again


@pytest.mark.parametrize("same_origin", [True, False])
def test_authorization_survives_a_redirect_only_within_the_same_scheme_host_and_port(
    source_server: SourceServer,  # noqa: F811
    same_origin: bool,
) -> None:
    # GIVEN a second real server on the same host, on another port
    with SourceServer([]) as other:
        target = source_server if same_origin else other
        source_server.redirect_to = f"http://127.0.0.1:{target.port}/feed"
        # WHEN a request with a token is redirected there
        loopback_client().get(source_server.url + "/redirect", headers={"authorization": "Bearer secret"})
        landed = target.requests_to("/feed")
    # THEN the token reached the next hop only when it is the same origin
    assert len(landed) == 1
    assert ("authorization" in landed[0].headers) is same_origin
    assert source_server.requests_to("/redirect")[0].headers["authorization"] == "Bearer secret"
