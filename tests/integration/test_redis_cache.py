"""The Redis cache adapter, shared rate limits and breaker state against a real redis-server,
including Redis stopping in the middle of a test."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from shared.cache.redis_cache import CacheTtls, RedisCache, build_cache
from shared.config import load_settings
from shared.intel.breaker import CircuitBreaker
from shared.net.ratelimit import HostRateLimiter
from tests.emulators import free_port
from tests.intel_fixtures import need_redis_server, redis_session, redis_url, start_redis  # noqa: F401
from tests.tls_fixtures import tls_material


def test_values_round_trip_and_hits_and_misses_are_counted(redis_url: str) -> None:  # noqa: F811
    cache = RedisCache(redis_url)
    assert cache.get("a") is None
    cache.set("a", {"x": [1, 2], "y": "z"})
    cache.set("v", np.arange(4, dtype=np.float32))
    assert cache.get("a") == {"x": [1, 2], "y": "z"}
    assert np.array_equal(cache.get("v"), np.arange(4, dtype=np.float32))
    assert (cache.hits, cache.misses) == (2, 1)
    assert cache.health()["status"] == "ok"


def test_each_kind_has_its_own_ttl(redis_url: str) -> None:  # noqa: F811
    cache = RedisCache(redis_url, ttls=CacheTtls(page=0.2, token=5, analysis=60))
    cache.set_kind("page", "p", "html")
    cache.set_kind("token", "t", "tok")
    assert cache.get_kind("page", "p") == "html"
    time.sleep(0.35)
    assert cache.get_kind("page", "p") is None
    assert cache.get_kind("token", "t") == "tok"
    assert 0 < cache.client.pttl("contentfn:token:t") <= 5000


def test_two_processes_share_one_cache(redis_url: str) -> None:  # noqa: F811
    RedisCache(redis_url).set("shared", 1)
    assert RedisCache(redis_url).get("shared") == 1


def test_redis_stopping_mid_test_degrades_to_memory_and_recovers() -> None:
    # GIVEN a cache on its own redis-server
    proc = start_redis()
    try:
        cache = RedisCache(proc.url, timeout_s=0.2, retry_s=0.3)
        cache.set("k", "before")
        assert cache.get("k") == "before"
        # WHEN Redis stops
        proc.stop()
        started = time.monotonic()
        cache.set("k2", "during")  # nothing raises
        assert cache.get("k2") == "during"  # answered by the in-process fallback
        assert cache.get("k") is None  # Redis's data is out of reach: a miss, not an error
        health = cache.health()
        assert health["status"] == "degraded" and health["errors"] >= 1
        assert time.monotonic() - started < 1.0  # a down Redis is not waited on per call
        # THEN when it comes back on the same port, the cache uses it again after the retry interval
        proc.start()
        time.sleep(0.35)
        cache.set("k3", "after")
        assert cache.client.get("contentfn:k3") is not None
        assert cache.health()["status"] == "ok"
    finally:
        proc.stop()


def test_rate_limit_buckets_are_shared_through_redis(redis_url: str) -> None:  # noqa: F811
    a = RedisCache(redis_url)
    b = RedisCache(redis_url)
    slept: list[float] = []
    one = HostRateLimiter(1.0, 2, shared=a.call, sleep=slept.append)
    two = HostRateLimiter(1.0, 2, shared=b.call, sleep=slept.append)
    one.acquire("src.example")
    two.acquire("src.example")  # burst of 2 used up across both
    assert slept == []
    two._sleep = lambda s: (slept.append(s), time.sleep(s))  # type: ignore[assignment]
    one._sleep = two._sleep  # type: ignore[assignment]
    one.acquire("src.example")
    assert slept and slept[0] > 0.5


def test_a_host_blocked_by_retry_after_is_blocked_for_every_worker(redis_url: str) -> None:  # noqa: F811
    cache = RedisCache(redis_url)
    HostRateLimiter(100.0, 10, shared=cache.call).block("slow.example", 2.0)
    waits: list[float] = []
    other = HostRateLimiter(100.0, 10, shared=RedisCache(redis_url).call, sleep=waits.append)
    other._take("slow.example")
    assert other._take("slow.example") > 1.5


def test_breaker_state_is_shared_through_redis(redis_url: str) -> None:  # noqa: F811
    first = CircuitBreaker("llm:x", failure_threshold=2, reset_s=0.3, shared=RedisCache(redis_url).call)
    second = CircuitBreaker("llm:x", failure_threshold=2, reset_s=0.3, shared=RedisCache(redis_url).call)
    first.record_failure()
    second.record_failure()  # two workers, one count
    assert not first.allow() and not second.allow()
    time.sleep(0.35)
    probes = [first.allow(), second.allow()]
    assert probes.count(True) == 1  # one probe across workers
    second.record_success()
    assert first.allow() and second.allow()


@pytest.mark.parametrize("san", [True, False], ids=["ip-in-san", "ip-in-cn-only"])
def test_a_tls_redis_signed_by_its_own_ca_is_used_when_given_that_ca(tmp_path: Path, san: bool) -> None:
    # GIVEN a redis-server that speaks only TLS, with a certificate from a CA no trust store holds
    # (as Memorystore's is)
    need_redis_server()
    server_cert, server_key, ca_pem = tls_material(tmp_path, san=san)
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--tls-cert-file", str(server_cert), "--tls-key-file", str(server_key), "--tls-auth-clients", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"rediss://127.0.0.1:{port}/0"
        settings = load_settings(redis_url=url, redis_ca_cert=ca_pem, redis_timeout_s=2)
        deadline = time.monotonic() + 10
        while True:
            # WHEN the cache is built from settings that carry that CA (CONTENTFN_REDIS_CA_CERT)
            cache = build_cache(settings)
            cache.set("tls", {"ok": 1})
            if cache.errors == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # the server is still starting
        # THEN values go through Redis over TLS
        assert isinstance(cache, RedisCache) and cache.errors == 0
        assert RedisCache(url, ca_cert=ca_pem, timeout_s=2).get("tls") == {"ok": 1}
        # AND without the CA the server is refused (certificate verify failed): the fallback answers
        blind = RedisCache(url, timeout_s=2)
        assert blind.get("tls") is None and blind.errors == 1 and not blind.available
    finally:
        proc.terminate()
        proc.wait(10)
