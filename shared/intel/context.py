"""Wiring for scrape, enrich and analyze: the shared cache (Redis or in-process), the safe HTTP
clients, the breaker, the budget and the router — built once per ``Services`` from its Settings.

Kept beside ``Services`` rather than inside it so functions that never call out (ingest, embed)
pay nothing for it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from shared.cache.redis_cache import RedisCache, SharedCache, build_cache
from shared.intel.breaker import CircuitBreaker
from shared.intel.budget import TokenBudget
from shared.intel.llm import LlmAnalyzer
from shared.intel.router import Router
from shared.net.client import SafeHttpClient, build_http_client
from shared.net.policy import AddressPolicy
from shared.services import Services

__all__ = ["Intel", "build_intel", "built_intel", "intel_for"]

_lock = threading.Lock()
_built: dict[int, tuple[Services, Intel]] = {}


@dataclass
class Intel:
    services: Services
    cache: SharedCache
    http: SafeHttpClient
    llm_http: SafeHttpClient
    breaker: CircuitBreaker
    budget: TokenBudget
    router: Router

    def health(self) -> dict[str, object]:
        return {"cache": self.cache.health(), "llm_breaker": self.breaker.state}

    def close(self) -> None:
        self.http.close()
        self.llm_http.close()


def build_intel(services: Services, *, cache: SharedCache | None = None) -> Intel:
    s = services.settings
    if cache is None:
        # One Redis client per process: the services' query cache when it already is Redis.
        cache = services.cache if isinstance(services.cache, RedisCache) else build_cache(s)
    shared = cache.call if isinstance(cache, RedisCache) else None
    http = build_http_client(s, shared=shared)
    # The LLM gets its own client: no per-host waiting (the breaker decides) and no retries (the
    # router falls back at once instead of keeping a caller waiting).
    llm_http = SafeHttpClient(
        policy=AddressPolicy.from_networks(s.http_allow_networks),
        timeout_s=s.llm_timeout_s,
        max_retries=0,
        user_agent=s.http_user_agent,
    )
    llm = None
    if s.llm_base_url:
        llm = LlmAnalyzer(
            llm_http,
            base_url=s.llm_base_url,
            model=s.llm_model,
            api_key=s.llm_api_key.get_secret_value() if s.llm_api_key else None,
            prompt_version=s.analysis_prompt_version,
            max_output_tokens=s.llm_max_output_tokens,
            timeout_s=s.llm_timeout_s,
            price_in_per_mtok=s.llm_price_input_per_mtok,
            price_out_per_mtok=s.llm_price_output_per_mtok,
        )
    breaker = CircuitBreaker(
        f"llm:{s.llm_model}", failure_threshold=s.llm_breaker_failures, reset_s=s.llm_breaker_reset_s, shared=shared
    )
    budget = TokenBudget(services.db, s.llm_daily_token_budget)
    router = Router(
        db=services.db,
        cache=cache,
        breaker=breaker,
        budget=budget,
        llm=llm,
        prompt_version=s.analysis_prompt_version,
        min_confidence=s.analysis_min_confidence,
        distilled_min_labels=s.distilled_min_labels,
        distilled_refit_every=s.distilled_refit_every,
        distilled_max_mae=s.distilled_max_mae,
    )
    return Intel(services, cache, http, llm_http, breaker, budget, router)


def intel_for(services: Services) -> Intel:
    """The process's Intel for these services (built on first use)."""
    with _lock:
        found = _built.get(id(services))
        if found is None or found[0] is not services:
            found = (services, build_intel(services))
            _built[id(services)] = found
        return found[1]


def built_intel(services: Services) -> Intel | None:
    """The Intel already built for these services, without building one."""
    with _lock:
        found = _built.get(id(services))
    return found[1] if found is not None and found[0] is services else None
