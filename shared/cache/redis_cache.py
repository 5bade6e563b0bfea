"""Redis adapter behind the Cache port, with an in-process fallback.

Why a fallback rather than an error: the cache only saves work. When Redis is unreachable the
adapter serves from a process-local LRU, reports ``degraded`` in its health, and tries Redis again
after ``retry_s`` — so a Redis outage costs cache hits, never a failed request, and a dead Redis is
not asked (and waited on) once per call.

Values are stored as JSON (numpy arrays tagged and base64-encoded), never pickled: whatever reads
a shared Redis cannot be made to run code by whatever wrote to it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from shared.cache import MemoryCache
from shared.metrics import CACHE_REQUESTS

__all__ = [
    "CacheKind",
    "CacheTtls",
    "LocalCache",
    "RedisCache",
    "SharedCache",
    "build_cache",
    "decode_value",
    "encode_value",
]

log = logging.getLogger(__name__)

CacheKind = Literal["page", "token", "analysis"]
T = TypeVar("T")
_ND = "__ndarray__"


@dataclass(frozen=True)
class CacheTtls:
    """Time to live per kind of cached value, in seconds."""

    page: float = 3600.0
    token: float = 3300.0
    analysis: float = 30 * 86400.0

    def of(self, kind: CacheKind) -> float:
        return float(getattr(self, kind))


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {_ND: [str(value.dtype), list(value.shape), base64.b64encode(value.tobytes()).decode("ascii")]}
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _hook(doc: dict[str, Any]) -> Any:
    if _ND in doc and len(doc) == 1:
        dtype, shape, data = doc[_ND]
        return np.frombuffer(base64.b64decode(data), dtype=np.dtype(dtype)).reshape(shape).copy()
    return doc


def _decoded(raw: Any) -> Any | None:
    return None if raw is None else decode_value(raw)


def encode_value(value: Any) -> bytes:
    return json.dumps(value, default=_default, separators=(",", ":")).encode("utf-8")


def decode_value(raw: bytes | str) -> Any:
    return json.loads(raw, object_hook=_hook)


class RedisCache:
    """The Cache port over Redis; falls back to an in-process LRU while Redis is unreachable.

    ``hits``/``misses`` count every lookup, whichever backend answered it.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "contentfn:",
        ttls: CacheTtls | None = None,
        timeout_s: float = 0.25,
        retry_s: float = 5.0,
        fallback: MemoryCache | None = None,
        ca_cert: str | None = None,
    ) -> None:
        """``ca_cert``: PEM of the CA to verify a ``rediss://`` server against (else the system's)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.prefix = prefix
        self.ttls = ttls or CacheTtls()
        self.retry_s = retry_s
        self.fallback = fallback or MemoryCache(4096)
        # No client-side retries: one failed call marks Redis down; the fallback answers at once.
        # A CA given for the server is that server's own (Memorystore issues one per instance, and its
        # certificate need not name the private IP it is reached by): the chain is verified against
        # it, the host name is not.
        tls: dict[str, Any] = (
            {"ssl_ca_data": ca_cert, "ssl_check_hostname": False} if ca_cert and url.startswith("rediss://") else {}
        )
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            **tls,
        )
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.errors = 0

    # -- health --------------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        """False while in the fallback period after a failure."""
        return time.monotonic() >= self._down_until

    def health(self) -> dict[str, Any]:
        if self.available:
            self.call(lambda r: r.ping(), None)
        return {
            "backend": "redis",
            "status": "ok" if self.available else "degraded",
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
        }

    def call(self, fn: Callable[[Any], T], default: T) -> T:
        """Run ``fn(redis_client)``; on a Redis failure mark it down and return ``default``.

        Other ports that share Redis (rate limiter, breaker) go through here, so one outage is
        noticed once and every user of Redis falls back together.
        """
        if not self.available:
            return default
        try:
            return fn(self.client)
        except self._errors as exc:
            with self._lock:
                was_up = self.available
                self._down_until = time.monotonic() + self.retry_s
                self.errors += 1
            if was_up:
                log.warning("redis unavailable (%s); using the in-process fallback", type(exc).__name__)
            return default

    # -- the Cache port -----------------------------------------------------------------------
    def get(self, key: str) -> Any | None:
        missing = object()
        raw = self.call(lambda r: r.get(self.prefix + key), missing)
        value = self.fallback.get(key) if raw is missing else _decoded(raw)
        with self._lock:
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
        return value

    def set(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        raw = encode_value(value)
        px = None if ttl_s is None else max(1, int(ttl_s * 1000))
        if not self.call(lambda r: bool(r.set(self.prefix + key, raw, px=px)) or True, False):
            self.fallback.set(key, value, ttl_s)

    def delete(self, key: str) -> None:
        self.call(lambda r: r.delete(self.prefix + key), 0)
        self.fallback.delete(key)

    # -- kinds --------------------------------------------------------------------------------
    def get_kind(self, kind: CacheKind, key: str) -> Any | None:
        value = self.get(f"{kind}:{key}")
        CACHE_REQUESTS.labels(kind, "miss" if value is None else "hit").inc()
        return value

    def set_kind(self, kind: CacheKind, key: str, value: Any, ttl_s: float | None = None) -> None:
        self.set(f"{kind}:{key}", value, self.ttls.of(kind) if ttl_s is None else ttl_s)


class LocalCache(MemoryCache):
    """The same surface as :class:`RedisCache` with no Redis at all (``CONTENTFN_REDIS_URL`` unset)."""

    def __init__(self, max_entries: int = 4096, ttls: CacheTtls | None = None) -> None:
        super().__init__(max_entries)
        self.ttls = ttls or CacheTtls()
        self.errors = 0

    available = False  # no shared backend: rate limits and breaker state stay in this process

    def call(self, fn: Callable[[Any], T], default: T) -> T:
        return default

    def health(self) -> dict[str, Any]:
        return {"backend": "memory", "status": "ok", "hits": self.hits, "misses": self.misses, "errors": 0}

    def get_kind(self, kind: CacheKind, key: str) -> Any | None:
        value = self.get(f"{kind}:{key}")
        CACHE_REQUESTS.labels(kind, "miss" if value is None else "hit").inc()
        return value

    def set_kind(self, kind: CacheKind, key: str, value: Any, ttl_s: float | None = None) -> None:
        self.set(f"{kind}:{key}", value, self.ttls.of(kind) if ttl_s is None else ttl_s)


SharedCache = RedisCache | LocalCache


def build_cache(settings: Any) -> SharedCache:
    """Redis when ``redis_url`` is configured, else the in-process cache."""
    ttls = CacheTtls(
        page=settings.cache_ttl_page_s, token=settings.cache_ttl_token_s, analysis=settings.cache_ttl_analysis_s
    )
    if settings.redis_url is None:
        return LocalCache(ttls=ttls)
    return RedisCache(
        settings.redis_url.get_secret_value(),
        ttls=ttls,
        timeout_s=settings.redis_timeout_s,
        retry_s=settings.redis_retry_s,
        ca_cert=settings.redis_ca_cert,
    )
