"""Outbound HTTP for every call the functions make to the outside world (sources, Spotify, LLM).

``SafeHttpClient`` refuses internal addresses (SSRF), pins the connection to the address it checked,
re-checks every redirect, caps size and time, retries politely and rate-limits per host.
"""

from shared.net.client import HttpResult, SafeHttpClient, build_http_client
from shared.net.errors import OutboundError, ResponseTooLarge, UpstreamRejected, UpstreamUnavailable, UrlRefused
from shared.net.policy import AddressPolicy

__all__ = [
    "AddressPolicy",
    "HttpResult",
    "OutboundError",
    "ResponseTooLarge",
    "SafeHttpClient",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "UrlRefused",
    "build_http_client",
]
