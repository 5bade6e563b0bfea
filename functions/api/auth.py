"""Who is calling, what they may do, and how much: keys, scopes, per-key quotas and the audit.

A request's key is ``CONTENTFN_API_KEY`` (the legacy single key, kept as the admin-scoped key named
``env`` so existing deployments keep working; a cloud runtime refuses a short one) or a named key
of ``contentfn keys`` (:mod:`shared.store.api_keys`). Quotas are fixed windows counted in Redis when
it is configured and reachable, in Postgres otherwise: either is shared by every API process, so a
quota holds however many instances serve the API.

Two things keep a request from paying a database round trip for each: a named key looked up is
trusted for ``api_key_cache_s`` (:class:`KeyCache`: a revoked key is refused within that bound, a
rotated-out secret at the end of its grace), and a process counting in Postgres reserves the
per-minute quota in slices (:class:`QuotaLeases`): a hundredth of the key's limit at a time, spent
in process. Reservations are counted in the shared row, so however many processes serve, no more
than the limit is admitted in a window; a key may be refused up to a slice early per other process.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.api.errors import ApiError
from functions.api.routing import Call, Route
from shared.events import HttpRequest
from shared.services import Services
from shared.store.api_keys import ApiKey, audit, find_key, secret_digest

__all__ = [
    "ANONYMOUS",
    "ENV_KEY_NAME",
    "KeyCache",
    "QuotaLeases",
    "authenticate",
    "authorize",
    "check_quota",
    "max_streams_of",
    "owner_of",
    "record_action",
    "spend_llm_quota",
]

log = logging.getLogger(__name__)

ENV_KEY_NAME = "env"
_ENV_KEY = ApiKey(name=ENV_KEY_NAME, scopes=frozenset({"admin"}))
# The owner of what a request creates where the API takes no key (the local runtime without one).
ANONYMOUS = "anonymous"
_MINUTE = 60
_DAY = 86_400


def owner_of(call: Call) -> str:
    """Whose quota a request counts against, and who owns what it creates (streams): the key's name."""
    return call.key.name if call.key is not None else ANONYMOUS


def max_streams_of(call: Call) -> int:
    """How many streams the calling key may have active at once: its own quota, else the setting."""
    limit = call.key.max_streams if call.key is not None else None
    return call.services.settings.stream_max_per_owner if limit is None else limit


class KeyCache:
    """Named keys looked up recently, by the digest of their secret, each trusted until its expiry:
    ``ttl_s`` after the lookup, or sooner where the secret is a previous one whose grace ends first.
    Only found keys are kept (a new key works at once; guessing fills nothing), at most ``max_entries``."""

    def __init__(self, ttl_s: float, max_entries: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._data: OrderedDict[bytes, tuple[float, ApiKey]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> ApiKey | None:
        with self._lock:
            item = self._data.get(digest)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                del self._data[digest]
                return None
            self._data.move_to_end(digest)
            return item[1]

    def put(self, digest: bytes, key: ApiKey) -> None:
        ttl = self.ttl_s
        if key.previous_expires_at is not None:
            # The secret may be the previous one: never trust it past the end of its grace.
            ttl = min(ttl, (key.previous_expires_at - datetime.now(UTC)).total_seconds())
        if ttl <= 0:
            return
        with self._lock:
            self._data[digest] = (time.monotonic() + ttl, key)
            self._data.move_to_end(digest)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)


def authenticate(services: Services, request: HttpRequest, keys: KeyCache | None = None) -> ApiKey:
    """The key the request carries, or a 401. A named key is looked up in the database, or taken
    from ``keys`` when looked up within its bound: a revoked key fails within ``api_key_cache_s``."""
    given = request.headers.get("x-api-key")
    if given is None:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
    if given:
        legacy = services.settings.api_key
        if legacy is not None and hmac.compare_digest(given.encode(), legacy.get_secret_value().encode()):
            return _ENV_KEY
        # Secrets are ASCII; anything longer than a secret can be is refused without a query.
        if len(given) <= 256 and given.isascii():
            digest = secret_digest(given)
            known = keys.get(digest) if keys is not None else None
            if known is not None:
                return known
            key = find_key(services.db, given)
            if key is not None:
                if keys is not None:
                    keys.put(digest, key)
                return key
    raise ApiError(
        401,
        "unauthorized",
        "missing or invalid API key (send X-API-Key)",
        headers={"www-authenticate": 'Bearer realm="contentfn"'},
    )


def authorize(key: ApiKey, route: Route) -> None:
    """A 403 unless the key holds the route's scope (or a wider one)."""
    if not key.allows(route.required_scope):
        raise ApiError(403, "forbidden", f"this key lacks the {route.required_scope!r} scope")


def check_quota(services: Services, key: ApiKey, leases: QuotaLeases | None = None) -> None:
    """Count one request against the key's per-minute quota; a 429 with Retry-After once it is spent.
    With ``leases``, a process counting in Postgres reserves the quota in slices (see the module)."""
    own = key.requests_per_minute
    limit = services.settings.api_requests_per_minute if own is None else own
    if limit == 0:  # no per-minute quota: nothing to count (a key allowed no request at all is a revoked key)
        return
    if leases is not None and not services.shared_cache:
        leases.spend(services, key.name, limit)
        return
    _spend(services, key.name, "requests", limit, _MINUTE)


@dataclass
class _Lease:
    expires: float = 0.0  # monotonic end of the window the slice was reserved in
    left: int = 0  # reserved and not yet spent
    spent_out: bool = False  # the window's quota is all reserved: refuse until it ends
    lock: threading.Lock | None = None


class QuotaLeases:
    """The per-minute quota reserved from Postgres in slices and spent in this process.

    A slice is ``ceil(limit / share)`` requests; the shared counter counts what was reserved, so
    the processes together never admit more than the limit in one window. Once a reservation finds
    the window spent, this process refuses the key until the window ends without asking again
    (nothing is ever given back within a window). A slice is used only within the window it was
    reserved in, by the database's clock, rounded down."""

    def __init__(self, share: int = 100) -> None:
        self.share = share
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def spend(self, services: Services, key_name: str, limit: int) -> None:
        with self._lock:
            lease = self._leases.get(key_name)
            if lease is None:
                lease = self._leases[key_name] = _Lease(lock=threading.Lock())
        assert lease.lock is not None
        with lease.lock:
            now = time.monotonic()
            if lease.expires <= now:
                lease.left, lease.spent_out = 0, False
            if lease.spent_out:
                raise _quota_spent("requests", limit, _MINUTE, math.ceil(lease.expires - now))
            if lease.left == 0:
                want = max(1, math.ceil(limit / self.share))
                used, remaining_s = _reserve(services, key_name, "requests", _MINUTE, want)
                lease.expires = now + remaining_s
                granted = min(want, max(0, limit - (used - want)))
                if granted == 0:
                    lease.spent_out = True
                    raise _quota_spent("requests", limit, _MINUTE, math.ceil(remaining_s))
                lease.left = granted
            lease.left -= 1


def _quota_spent(quota: str, limit: int, window_s: int, retry_after: int) -> ApiError:
    return ApiError(
        429,
        "quota_exceeded",
        f"the key's {quota} quota ({limit} per {'minute' if window_s == _MINUTE else 'day'}) is spent",
        headers={"retry-after": str(max(1, retry_after))},
    )


def spend_llm_quota(call: Call) -> None:
    """Count one LLM-forced analysis against the key's daily quota; a 429 with Retry-After once spent."""
    if call.key is None:
        return
    limit = call.key.llm_per_day
    _spend(
        call.services, call.key.name, "llm", call.services.settings.api_llm_per_day if limit is None else limit, _DAY
    )


def record_action(
    services: Services, *, key_name: str, route: Route, method: str, target: str | None, status: int
) -> None:
    """Write the audit row of a write or admin action; a failure to write it is logged, not answered
    (the action itself has already happened or failed)."""
    try:
        audit(
            services.db,
            key_name=key_name,
            scope=route.required_scope,
            method=method,
            route=route.pattern,
            target=target,
            status=status,
        )
    except Exception:
        log.exception("could not write the audit row of %s %s by key %s", method, route.pattern, key_name)


def _spend(services: Services, key_name: str, quota: str, limit: int, window_s: int) -> None:
    used, retry_after = _count(services, key_name, quota, window_s)
    if used > limit:
        raise _quota_spent(quota, limit, window_s, retry_after)


def _count(services: Services, key_name: str, quota: str, window_s: int) -> tuple[int, int]:
    """(uses so far in the current window including this one, seconds until the window ends)."""
    from shared.cache.redis_cache import RedisCache

    cache = services.cache
    if isinstance(cache, RedisCache):
        now = time.time()
        start = int(now // window_s) * window_s
        name = f"{cache.prefix}quota:{key_name}:{quota}:{start}"

        def incr(client: Any) -> int:
            pipe = client.pipeline()
            pipe.incr(name)
            pipe.expire(name, window_s + 60)
            return int(pipe.execute()[0])

        used = cache.call(incr, -1)
        if used >= 0:
            return used, math.ceil(start + window_s - now)
        # Redis is down: Postgres keeps counting, so the quota still holds across processes.
    used, remaining_s = _reserve(services, key_name, quota, window_s, 1)
    return used, math.ceil(remaining_s)


def _reserve(services: Services, key_name: str, quota: str, window_s: int, n: int) -> tuple[int, float]:
    """Add ``n`` to the key's counter of the current window in Postgres: (the count after, seconds
    until the window ends by the database's clock)."""
    with services.db.connection() as conn:
        row = conn.execute(
            """
            WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / %(w)s) * %(w)s) AS start)
            INSERT INTO api_quota_counters AS c (key_name, quota, window_start, used)
            SELECT %(k)s, %(q)s, w.start, %(n)s FROM w
            ON CONFLICT (key_name, quota, window_start) DO UPDATE SET used = c.used + %(n)s
            RETURNING c.used, extract(epoch FROM c.window_start + make_interval(secs => %(w)s) - now())::float8
            """,
            {"w": window_s, "k": key_name, "q": quota, "n": n},
        ).fetchone()
        if row is not None and row[0] == n:
            # A new window: drop windows long past, so the table stays the size of the live windows.
            conn.execute("DELETE FROM api_quota_counters WHERE window_start < now() - interval '2 days'")
        conn.commit()
    assert row is not None
    return int(row[0]), max(0.0, float(row[1]))
