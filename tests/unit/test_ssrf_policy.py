"""The SSRF policy and the pinned connection, with no network: a fake resolver and a transport
that records every request it is handed (a refused target must never reach it)."""

from __future__ import annotations

import httpx
import pytest

from shared.net import AddressPolicy, SafeHttpClient, UrlRefused
from shared.net.client import parse_retry_after

PUBLIC = "93.184.216.34"


class RecordingTransport(httpx.BaseTransport):
    def __init__(self, responses: list[httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.responses = responses or []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0) if self.responses else httpx.Response(200, json={"ok": True})


def client(
    resolve: dict[str, list[str]] | None = None, *, allow: tuple[str, ...] = (), transport=None
) -> SafeHttpClient:
    table = resolve or {}
    return SafeHttpClient(
        policy=AddressPolicy.from_networks(allow),
        resolver=lambda host, port: table.get(host, [PUBLIC]),
        transport=transport or RecordingTransport(),
        max_retries=0,
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://100.64.0.1/", "private"),
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "IPv6 address embedding"),
        ("http://[::ffff:169.254.169.254]/", "IPv6 address embedding"),
        ("http://[64:ff9b::a00:1]/", "IPv6 address embedding"),
        ("http://[2002:a00:1::]/", "IPv6 address embedding"),
        ("http://[fc00::1]/", "private"),
        ("http://[::7f00:1]/", "IPv4-compatible"),
        ("http://[::a00:1]/", "IPv4-compatible"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[64:ff9b:1::a00:1]/", "local-use NAT64"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
    ],
)
def test_internal_literal_addresses_are_refused_before_any_connection(url: str, why: str) -> None:
    # GIVEN a client with no allowlist WHEN asked for an internal address THEN it refuses, naming why
    transport = RecordingTransport()
    with pytest.raises(UrlRefused, match=why):
        client(transport=transport).get(url)
    assert transport.requests == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "017700000001", "127.1"])
def test_decimal_hex_octal_and_short_ipv4_forms_are_resolved_then_refused(host: str) -> None:
    # The system resolver reads these forms as 127.0.0.1; the policy judges the address, not the spelling.
    transport = RecordingTransport()
    c = SafeHttpClient(policy=AddressPolicy(), transport=transport, max_retries=0)
    with pytest.raises(UrlRefused, match="loopback"):
        c.get(f"http://{host}/")
    assert transport.requests == []


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    transport = RecordingTransport()
    with pytest.raises(UrlRefused, match="private"):
        client({"internal.example": ["10.0.0.7"]}, transport=transport).get("http://internal.example/")
    assert transport.requests == []


def test_a_name_with_one_public_and_one_private_address_is_refused() -> None:
    with pytest.raises(UrlRefused):
        client({"split.example": [PUBLIC, "192.168.0.9"]}).get("http://split.example/")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "http://user:pw@example.com/"]
)
def test_other_schemes_and_credentials_in_urls_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        client().get(url)


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host_and_sni() -> None:
    # GIVEN a name that resolves to a public address
    transport = RecordingTransport()
    c = client({"songs.example": [PUBLIC]}, transport=transport)
    # WHEN fetched over https
    c.get("https://songs.example/api?q=1")
    # THEN the request URL carries the checked IP; Host and SNI carry the name (no second lookup)
    sent = transport.requests[0]
    assert sent.url.host == PUBLIC
    assert sent.headers["host"] == "songs.example"
    assert sent.extensions["sni_hostname"] == "songs.example"


def test_a_redirect_to_a_metadata_address_is_refused_after_the_first_hop() -> None:
    transport = RecordingTransport([httpx.Response(302, headers={"location": "http://169.254.169.254/latest"})])
    with pytest.raises(UrlRefused, match="metadata"):
        client(transport=transport).get("http://public.example/start")
    assert len(transport.requests) == 1


def test_a_redirect_to_another_host_drops_the_authorization_header() -> None:
    transport = RecordingTransport([httpx.Response(302, headers={"location": "http://other.example/next"})])
    client(transport=transport).get("http://first.example/", headers={"authorization": "Bearer secret"})
    assert "authorization" in transport.requests[0].headers
    assert "authorization" not in transport.requests[1].headers


@pytest.mark.parametrize(
    "location", ["https://first.example/next", "http://first.example:8080/next", "https://first.example:80/"]
)
def test_a_redirect_to_another_scheme_or_port_drops_the_authorization_header(location: str) -> None:
    transport = RecordingTransport([httpx.Response(302, headers={"location": location})])
    client(transport=transport).get("http://first.example/", headers={"authorization": "Bearer secret"})
    assert "authorization" not in transport.requests[1].headers


def test_a_redirect_within_the_same_origin_keeps_the_authorization_header() -> None:
    transport = RecordingTransport([httpx.Response(302, headers={"location": "http://FIRST.example:80/next"})])
    client(transport=transport).get("http://first.example/", headers={"authorization": "Bearer secret"})
    assert transport.requests[1].headers["authorization"] == "Bearer secret"


def test_the_allowlist_permits_a_listed_network_only() -> None:
    policy = AddressPolicy.from_networks(["127.0.0.1/32"])
    import ipaddress

    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.2")) == "loopback address"
    assert AddressPolicy().refusal(ipaddress.ip_address("127.0.0.1")) == "loopback address"


def test_production_settings_allow_no_internal_network() -> None:
    from shared.config import Settings

    assert Settings().http_allow_networks == ()


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
