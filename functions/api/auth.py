"""Who is calling, what they may do, and how much: keys, scopes, per-key quotas and the audit.

A request's key is ``CONTENTFN_API_KEY`` (the legacy single key, kept as the admin-scoped key named
``env`` so existing deployments keep working; a cloud runtime refuses a short one) or a named key
of ``contentfn keys`` (:mod:`shared.store.api_keys`). Quotas are fixed windows counted in Redis when
it is configured and reachable, in Postgres otherwise: either is shared by every API process, so a
quota holds however many instances serve the API.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from typing import Any

from functions.api.errors import ApiError
from functions.api.routing import Call, Route
from shared.events import HttpRequest
from shared.services import Services
from shared.store.api_keys import ApiKey, audit, find_key

__all__ = [
    "ANONYMOUS",
    "ENV_KEY_NAME",
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


def authenticate(services: Services, request: HttpRequest) -> ApiKey:
    """The key the request carries, or a 401. Looked up on every request: a revoked key fails at once."""
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
            key = find_key(services.db, given)
            if key is not None:
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


def check_quota(services: Services, key: ApiKey) -> None:
    """Count one request against the key's per-minute quota; a 429 with Retry-After once it is spent."""
    own = key.requests_per_minute
    limit = services.settings.api_requests_per_minute if own is None else own
    if limit == 0:  # no per-minute quota: nothing to count (a key allowed no request at all is a revoked key)
        return
    _spend(services, key.name, "requests", limit, _MINUTE)


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
        raise ApiError(
            429,
            "quota_exceeded",
            f"the key's {quota} quota ({limit} per {'minute' if window_s == _MINUTE else 'day'}) is spent",
            headers={"retry-after": str(max(1, retry_after))},
        )


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
    with services.db.connection() as conn:
        row = conn.execute(
            """
            WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / %(w)s) * %(w)s) AS start)
            INSERT INTO api_quota_counters AS c (key_name, quota, window_start, used)
            SELECT %(k)s, %(q)s, w.start, 1 FROM w
            ON CONFLICT (key_name, quota, window_start) DO UPDATE SET used = c.used + 1
            RETURNING c.used, ceil(extract(epoch FROM c.window_start + make_interval(secs => %(w)s) - now()))::int
            """,
            {"w": window_s, "k": key_name, "q": quota},
        ).fetchone()
        if row is not None and row[0] == 1:
            # A new window: drop windows long past, so the table stays the size of the live windows.
            conn.execute("DELETE FROM api_quota_counters WHERE window_start < now() - interval '2 days'")
        conn.commit()
    assert row is not None
    return int(row[0]), int(row[1])
