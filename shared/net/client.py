"""The safe outbound HTTP client (httpx underneath).

Each hop of a request: parse the URL (http/https only, no credentials in it) → resolve the host and
check every address against the policy → connect to the *checked address* (the URL's host is
replaced by the IP; ``Host`` and TLS SNI/verification keep the name), so a DNS answer that changes
between check and connect (rebinding) cannot redirect us. Redirects are followed by hand and each
target is checked again. Bodies are streamed and cut at the size cap; every attempt has a deadline.
429 and 5xx are retried with capped, jittered backoff that honours Retry-After, and a 429 blocks
the host in the shared rate limiter so other callers back off too.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from shared.net.errors import ResponseTooLarge, UpstreamRejected, UpstreamUnavailable, UrlRefused
from shared.net.policy import AddressPolicy, Resolver, system_resolver
from shared.net.ratelimit import HostRateLimiter

__all__ = [
    "REDIRECT_STATUSES",
    "HttpResult",
    "PinnedUrl",
    "SafeHttpClient",
    "build_http_client",
    "parse_retry_after",
    "pin_url",
]

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str  # the last URL asked for (after redirects), with the host name, not the pinned IP

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise UpstreamRejected("response is not JSON", status=self.status) from None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class PinnedUrl:
    url: httpx.URL  # host replaced by the checked IP
    host: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pin_url(url: httpx.URL, policy: AddressPolicy, resolver: Resolver = system_resolver) -> PinnedUrl:
    """Check ``url`` (http/https, no credentials) against ``policy``; rewrite it to a checked address.

    ``Host`` and the TLS SNI name keep the URL's name, so virtual hosts and certificates still work.
    """
    if url.scheme not in _DEFAULT_PORTS:
        raise UrlRefused("only http and https URLs are fetched")
    if url.userinfo:
        raise UrlRefused("credentials in URLs are refused")
    host = url.host
    if not host:
        raise UrlRefused("URL has no host")
    port = url.port or _DEFAULT_PORTS[url.scheme]
    ip = policy.check_host(host, port, resolver)[0]
    host_header = host if url.port is None else f"{host}:{url.port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if url.port is None else f"[{host}]:{url.port}"
    extensions: dict[str, Any] = {}
    if url.scheme == "https" and not _is_ip(host):
        extensions["sni_hostname"] = host
    return PinnedUrl(url.copy_with(host=str(ip)), host, {"host": host_header}, extensions)


class SafeHttpClient:
    """One client per process; thread-safe (httpx.Client is)."""

    def __init__(
        self,
        *,
        policy: AddressPolicy,
        limiter: HostRateLimiter | None = None,
        timeout_s: float = 10.0,
        max_bytes: int = 5 * 1024 * 1024,
        max_redirects: int = 5,
        max_retries: int = 3,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        retry_after_cap_s: float = 60.0,
        user_agent: str = "contentfn",
        resolver: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.retry_after_cap_s = retry_after_cap_s
        self.user_agent = user_agent
        self._resolve = resolver
        self._sleep = sleep
        # trust_env=False: a proxy from the environment would connect by name and undo the pinning.
        self._client = httpx.Client(
            transport=transport, trust_env=False, follow_redirects=False, timeout=httpx.Timeout(timeout_s)
        )
        self.requests_sent = 0

    def close(self) -> None:
        self._client.close()

    # -- public ---------------------------------------------------------------------------------
    def get(self, url: str, **kw: Any) -> HttpResult:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> HttpResult:
        return self.request("POST", url, **kw)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        max_bytes: int | None = None,
        max_retries: int | None = None,
        accept_status: frozenset[int] = frozenset(),
    ) -> HttpResult:
        """Send with retries. 2xx (and ``accept_status``) return; other 4xx raise UpstreamRejected;
        429/5xx/network errors are retried, then raise UpstreamUnavailable; policy breaches raise
        UrlRefused; oversized bodies raise ResponseTooLarge."""
        retries = self.max_retries if max_retries is None else max_retries
        full = httpx.URL(url, params=params) if params else httpx.URL(url)
        content = json.dumps(json_body).encode() if json_body is not None else None
        hdrs = {"user-agent": self.user_agent, **{k.lower(): v for k, v in (headers or {}).items()}}
        if json_body is not None:
            hdrs["content-type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._follow(method, full, hdrs, content, data, timeout_s or self.timeout_s, max_bytes)
            except UpstreamUnavailable as exc:
                if attempt > retries:
                    raise
                self._sleep(self._backoff(attempt))
                log.debug("retrying %s after %s", full.host, exc)
                continue
            status = result.status
            if 200 <= status < 300 or status in accept_status:
                return result
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(result.headers.get("retry-after"))
                if retry_after is not None and self.limiter is not None:
                    self.limiter.block(httpx.URL(result.url).host, min(retry_after, self.retry_after_cap_s))
                if attempt > retries or (retry_after is not None and retry_after > self.retry_after_cap_s):
                    raise UpstreamUnavailable(f"upstream answered {status}", status=status, retry_after_s=retry_after)
                self._sleep(retry_after if retry_after is not None else self._backoff(attempt))
                continue
            raise UpstreamRejected(f"upstream answered {status}", status=status)

    # -- internals ------------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        exp = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1))
        return exp / 2 + random.random() * exp / 2  # noqa: S311 - jitter, not a secret

    def pin(self, url: httpx.URL) -> PinnedUrl:
        """Check ``url`` against the policy and return it rewritten to connect to a checked address."""
        return pin_url(url, self.policy, self._resolve)

    def _follow(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        content: bytes | None,
        data: Mapping[str, str] | None,
        timeout_s: float,
        max_bytes: int | None,
    ) -> HttpResult:
        for _hop in range(self.max_redirects + 1):
            pinned = self.pin(url)
            if self.limiter is not None:
                self.limiter.acquire(pinned.host, max_wait_s=max(timeout_s, self.retry_after_cap_s))
            status, resp_headers, body = self._send(
                method, pinned, headers, content, data, timeout_s, max_bytes or self.max_bytes
            )
            location = resp_headers.get("location")
            if status not in REDIRECT_STATUSES or not location:
                return HttpResult(status, resp_headers, body, str(url))
            target = url.join(location)
            if _origin(target) != _origin(url):
                # Credentials were meant for the first origin only: another host, another scheme (an
                # https token must not travel in clear) or another port (another service) is not it.
                headers = {k: v for k, v in headers.items() if k not in ("authorization", "cookie")}
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, content, data = "GET", None, None
            url = target
        raise UrlRefused(f"more than {self.max_redirects} redirects")

    def _send(
        self,
        method: str,
        pinned: PinnedUrl,
        headers: dict[str, str],
        content: bytes | None,
        data: Mapping[str, str] | None,
        timeout_s: float,
        max_bytes: int,
    ) -> tuple[int, httpx.Headers, bytes]:
        deadline = time.monotonic() + timeout_s
        request = self._client.build_request(
            method,
            pinned.url,
            headers={**headers, **pinned.headers},
            content=content,
            data=data,
            extensions={**pinned.extensions, "timeout": httpx.Timeout(timeout_s).as_dict()},
        )
        self.requests_sent += 1
        try:
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamUnavailable("upstream timed out") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}") from None
        try:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise ResponseTooLarge(f"response declares {declared} bytes, over the {max_bytes}-byte cap")
            body = bytearray()
            if response.status_code not in REDIRECT_STATUSES:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise ResponseTooLarge(f"response body over the {max_bytes}-byte cap")
                    if time.monotonic() > deadline:
                        raise UpstreamUnavailable("upstream response exceeded the time cap")
            return response.status_code, response.headers, bytes(body)
        except httpx.TimeoutException:
            raise UpstreamUnavailable("upstream timed out") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"upstream connection failed: {type(exc).__name__}") from None
        finally:
            response.close()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    scheme = url.scheme.lower()
    return scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(scheme)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def build_http_client(settings: Any, *, shared: Callable[..., Any] | None = None) -> SafeHttpClient:
    """The client from Settings; ``shared`` is the cache's Redis ``call`` for shared rate limits."""
    limiter = HostRateLimiter(settings.http_rate_per_host, settings.http_burst_per_host, shared=shared)
    return SafeHttpClient(
        policy=AddressPolicy.from_networks(settings.http_allow_networks),
        limiter=limiter,
        timeout_s=settings.http_timeout_s,
        max_bytes=settings.http_max_response_bytes,
        max_redirects=settings.http_max_redirects,
        max_retries=settings.http_max_retries,
        backoff_base_s=settings.http_backoff_base_s,
        backoff_cap_s=settings.http_backoff_cap_s,
        retry_after_cap_s=settings.http_retry_after_cap_s,
        user_agent=settings.http_user_agent,
    )
