"""A circuit breaker around the LLM: closed → open after N consecutive failures (or at once on a
429 with Retry-After) → half-open after the cool-down, where exactly one probe call is let through;
its success closes the breaker, its failure opens it again.

State lives in Redis when it is up, so every worker sees one breaker; otherwise in this process.
The Redis operations are Lua scripts on Redis's own clock, so check-and-set is atomic across workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from shared.metrics import BREAKER_STATE

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]
# The value of the ``contentfn_breaker_state`` gauge per state (a probe is the half-open state).
_STATE_VALUE: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}
_SHARED_STATE: dict[str, int] = {"closed": 0, "probe": 1, "open": 2}

_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) + tonumber(t[2]) / 1e6\n"
# KEYS[1]: hash {failures, open_until, probe_until}. ARGV[1]: probe lease seconds.
_ALLOW = (
    _NOW
    + """
local s = redis.call('HMGET', KEYS[1], 'open_until', 'probe_until')
local open_until = tonumber(s[1]) or 0
local probe_until = tonumber(s[2]) or 0
if open_until == 0 then return 'closed' end
if now < open_until then return 'open' end
if now < probe_until then return 'open' end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[1])))
return 'probe'
"""
)
# ARGV: threshold, reset seconds, cooldown seconds (0: none). Returns the state after.
_FAIL = (
    _NOW
    + """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until')) or 0
local half_open = open_until ~= 0 and now >= open_until
local cooldown = tonumber(ARGV[3])
if half_open or failures >= tonumber(ARGV[1]) or cooldown > 0 then
  redis.call('HSET', KEYS[1], 'open_until', tostring(now + math.max(tonumber(ARGV[2]), cooldown)), 'probe_until', '0')
  return 'open'
end
return 'closed'
"""
)
_SUCCESS = "redis.call('DEL', KEYS[1]); return 'closed'"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_s: float = 30.0,
        probe_lease_s: float = 60.0,
        shared: Callable[[Callable[[Any], Any], Any], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self.probe_lease_s = probe_lease_s
        self._shared = shared
        self._key = f"contentfn:breaker:{name}"
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._probe_until = 0.0
        self.opened = 0  # times it opened (for tests and /stats)
        self._gauge = BREAKER_STATE.labels(name)
        self._gauge.set(0)

    def _redis(self, script: str, *args: Any) -> str | None:
        if self._shared is None:
            return None
        raw = self._shared(lambda r: r.eval(script, 1, self._key, *args), None)
        return raw.decode() if isinstance(raw, bytes) else raw

    def allow(self) -> bool:
        """May a call go out now? In half-open, True for exactly one caller (the probe)."""
        shared = self._redis(_ALLOW, self.probe_lease_s)
        if shared is not None:
            self._gauge.set(_SHARED_STATE[shared])
            return shared in ("closed", "probe")
        self._gauge.set(_STATE_VALUE[self.state])
        with self._lock:
            now = self._clock()
            if self._open_until == 0:
                return True
            if now < self._open_until or now < self._probe_until:
                return False
            self._probe_until = now + self.probe_lease_s
            return True

    def record_success(self) -> None:
        self._redis(_SUCCESS)
        with self._lock:
            self._failures = 0
            self._open_until = 0.0
            self._probe_until = 0.0
        self._gauge.set(0)

    def record_failure(self, cooldown_s: float | None = None) -> None:
        """Count a failure; ``cooldown_s`` (a Retry-After) opens the breaker at least that long."""
        cooldown = max(0.0, cooldown_s or 0.0)
        shared = self._redis(_FAIL, self.failure_threshold, self.reset_s, cooldown)
        with self._lock:
            now = self._clock()
            self._failures += 1
            half_open = self._open_until != 0 and now >= self._open_until
            if shared is not None:
                opened = shared == "open"
            else:
                opened = half_open or self._failures >= self.failure_threshold or cooldown > 0
            if opened:
                self._open_until = now + max(self.reset_s, cooldown)
                self._probe_until = 0.0
                self.opened += 1
                self._gauge.set(_STATE_VALUE["open"])

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._open_until == 0:
                return "closed"
            return "open" if self._clock() < self._open_until else "half_open"
