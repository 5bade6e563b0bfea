"""Per-host token buckets, shared through Redis when it is up, process-local otherwise.

A host that answers 429 with Retry-After is *blocked* until then: every caller sharing the bucket
(every worker, through Redis) waits, so a source asking us to slow down is not hammered by the
other workers in the meantime.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from shared.net.errors import UpstreamUnavailable

__all__ = ["HostRateLimiter"]

# KEYS[1]: bucket hash. ARGV: rate per second, burst, ttl ms. Returns seconds to wait ("0": go).
# Redis's own clock keeps every worker on one time line.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'blocked')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
local blocked = tonumber(b[3]) or 0
if now < blocked then return tostring(blocked - now) end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return tostring(wait)
"""
_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local until_ = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'blocked')) or 0
if until_ > cur then redis.call('HSET', KEYS[1], 'blocked', tostring(until_)) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class _LocalBucket:
    __slots__ = ("blocked", "tokens", "ts")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.ts = now
        self.blocked = 0.0


class HostRateLimiter:
    """``acquire(host)`` waits for a token; ``block(host, s)`` pauses the host for everyone.

    ``shared`` is the cache's ``call`` (``RedisCache.call``): it runs a Redis operation or returns
    the default when Redis is down, in which case the process-local bucket answers.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        shared: Callable[[Callable[[Any], Any], Any], Any] | None = None,
        prefix: str = "contentfn:ratelimit:",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._shared = shared
        self._prefix = prefix
        self._sleep = sleep
        self._local: dict[str, _LocalBucket] = {}
        self._lock = threading.Lock()
        self._ttl_ms = int(max(60.0, burst / rate_per_s * 4) * 1000)
        self.waited_s = 0.0

    def acquire(self, host: str, *, max_wait_s: float = 120.0) -> None:
        """Take one token for ``host``, sleeping as needed; gives up after ``max_wait_s``."""
        deadline = time.monotonic() + max_wait_s
        while True:
            wait = self._take(host)
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise UpstreamUnavailable("rate limit wait for this host exceeds the time cap", retry_after_s=wait)
            self.waited_s += wait
            self._sleep(min(wait, 5.0))

    def block(self, host: str, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            bucket = self._bucket(host)
            bucket.blocked = max(bucket.blocked, time.monotonic() + seconds)
        if self._shared is not None:
            self._shared(lambda r: r.eval(_BLOCK, 1, self._prefix + host, seconds, self._ttl_ms), None)

    def _take(self, host: str) -> float:
        if self._shared is not None:
            raw = self._shared(
                lambda r: r.eval(_TAKE, 1, self._prefix + host, self.rate, self.burst, self._ttl_ms), None
            )
            if raw is not None:
                return float(raw)
        with self._lock:
            now = time.monotonic()
            bucket = self._bucket(host)
            if now < bucket.blocked:
                return bucket.blocked - now
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.ts) * self.rate)
            bucket.ts = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def _bucket(self, host: str) -> _LocalBucket:
        bucket = self._local.get(host)
        if bucket is None:
            bucket = self._local[host] = _LocalBucket(self.burst, time.monotonic())
        return bucket
