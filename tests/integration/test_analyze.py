"""analyze against the local OpenAI-compatible server and a real Postgres: structured output,
repair, fallback, breaker, budget, cache, cost ledger, the distilled predictor."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from functions.analyze.core import analyze_track, run_analyze_batch
from shared.intel.context import intel_for
from shared.models import TrackIn
from shared.services import Services
from shared.store.tracks import upsert_tracks
from tests.intel_fixtures import intel_services, llm_server, redis_session, redis_url, sample_rows  # noqa: F401
from tests.servers.llm_server import LlmServer, label_for


def llm_settings(server: LlmServer, **extra: object) -> dict[str, object]:
    return {"llm_base_url": server.url, "llm_api_key": "test-key", "llm_model": "test-model", **extra}


def load_tracks(services: Services, n: int = 12) -> list[int]:
    rows = [
        TrackIn(artist=r["artist"], title=r["title"], lyrics=r["lyrics"], source_id=r["id"]) for r in sample_rows(n)
    ]
    with services.db.connection() as conn:
        result = upsert_tracks(conn, rows)
        conn.commit()
    return sorted(c.id for c in result.content_changed)


def hashed_embedding(text: str) -> np.ndarray:
    """A stand-in sentence vector: hashed bag of words, L2-normalised (no model in this test)."""
    v = np.zeros(384, dtype=np.float32)
    for w in re.findall(r"[a-z]+", text.lower()):
        v[int(hashlib.md5(w.encode()).hexdigest(), 16) % 384] += 1
    return v / max(1e-6, float(np.linalg.norm(v)))


def add_embeddings(services: Services, ids: list[int]) -> None:
    with services.db.connection() as conn:
        for tid in ids:
            lyrics, chash = conn.execute("SELECT lyrics, content_hash FROM tracks WHERE id = %s", (tid,)).fetchone()
            conn.execute(
                "INSERT INTO embeddings (track_id, model, embedding, content_hash) VALUES (%s, 'hash-384', %s, %s)",
                (tid, hashed_embedding(lyrics), chash),
            )
        conn.commit()


def scalar(services: Services, sql: str, *args: object) -> object:
    with services.db.connection() as conn:
        row = conn.execute(sql, args).fetchone()
        conn.commit()
    return row[0] if row else None


def test_a_low_confidence_track_is_escalated_to_the_llm_and_costed(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    services = intel_services(**llm_settings(llm_server, llm_price_input_per_mtok=1.0, llm_price_output_per_mtok=2.0))
    tid = load_tracks(services, 1)[0]
    analysis = analyze_track(tid, services)
    assert analysis.analyzer == "llm:test-model" and not analysis.fallback
    lyrics = sample_rows(1)[0]["lyrics"]
    assert analysis.profile.quality == label_for(lyrics)["quality"]
    assert analysis.cost.tokens_in > 0 and analysis.cost.usd > 0
    sent = llm_server.requests_to("/v1/chat/completions")[0]
    assert b'"json_schema"' in sent.body
    # Stored once, with its cost in the ledger.
    assert scalar(services, "SELECT count(*) FROM analyses WHERE analyzer = 'llm:test-model'") == 1
    assert scalar(services, "SELECT count(*) FROM llm_calls WHERE subject = %s AND outcome = 'ok'", f"track:{tid}") == 1
    # Asked again: answered from the cache, no second call.
    again = analyze_track(tid, services)
    assert again.cached and llm_server.completions() == 1
    assert intel_for(services).router.stats.cache_hits == 1


def test_rules_only_mode_never_calls_the_llm(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    services = intel_services(**llm_settings(llm_server))
    tid = load_tracks(services, 1)[0]
    assert analyze_track(tid, services, mode="rules").analyzer == "rules"
    assert llm_server.completions() == 0


def test_invalid_json_is_repaired_once(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    llm_server.mode = "invalid_once"
    services = intel_services(**llm_settings(llm_server))
    tid = load_tracks(services, 1)[0]
    analysis = analyze_track(tid, services)
    assert analysis.analyzer == "llm:test-model" and not analysis.fallback
    assert llm_server.completions() == 2
    outcomes = scalar(services, "SELECT array_agg(outcome ORDER BY id) FROM llm_calls")
    assert outcomes == ["invalid", "ok"]


@pytest.mark.parametrize("mode", ["invalid", "wrong_schema"])
def test_output_still_invalid_after_the_repair_falls_back_to_rules(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
    mode: str,
) -> None:
    llm_server.mode = mode
    services = intel_services(**llm_settings(llm_server))
    tid = load_tracks(services, 1)[0]
    analysis = analyze_track(tid, services)
    assert analysis.fallback and analysis.analyzer == "rules" and analysis.fallback_reason == "llm answer invalid"
    assert llm_server.completions() == 2  # one call, one repair, no more


def test_breaker_opens_on_500s_and_closes_after_a_successful_probe(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    llm_server.mode = "500"
    services = intel_services(**llm_settings(llm_server, llm_breaker_failures=3, llm_breaker_reset_s=0.5))
    ids = load_tracks(services, 8)
    results = [analyze_track(t, services) for t in ids[:6]]
    # Every request answered, flagged; only 3 calls before the breaker opened.
    assert all(r.fallback for r in results)
    assert llm_server.completions() == 3
    breaker = intel_for(services).breaker
    assert breaker.state == "open"
    # After the cool-down one probe goes out; the service is back, so the breaker closes.
    llm_server.mode = "ok"
    time.sleep(0.6)
    assert not analyze_track(ids[6], services).fallback
    assert breaker.state == "closed"
    assert not analyze_track(ids[7], services).fallback


def test_a_429_with_retry_after_holds_calls_back_for_that_long(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    llm_server.mode = "429"
    llm_server.retry_after_s = 1
    services = intel_services(**llm_settings(llm_server, llm_breaker_reset_s=0.1))
    ids = load_tracks(services, 4)
    first = analyze_track(ids[0], services)
    assert first.fallback and first.fallback_reason == "llm unavailable"
    llm_server.mode = "ok"
    assert analyze_track(ids[1], services).fallback_reason == "llm circuit open"  # within Retry-After
    assert llm_server.completions() == 1
    time.sleep(1.1)
    assert not analyze_track(ids[2], services).fallback


def test_a_hanging_llm_times_out_into_a_fallback(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    llm_server.mode = "hang"
    services = intel_services(**llm_settings(llm_server, llm_timeout_s=0.5))
    tid = load_tracks(services, 1)[0]
    started = time.monotonic()
    analysis = analyze_track(tid, services)
    assert analysis.fallback and time.monotonic() - started < 2.5


def test_an_llm_that_is_not_there_at_all_is_a_fallback_not_an_error(
    intel_services: Callable[..., Services],  # noqa: F811
) -> None:
    from tests.emulators import free_port

    services = intel_services(llm_base_url=f"http://127.0.0.1:{free_port()}", llm_api_key="k")
    ids = load_tracks(services, 2)
    assert all(analyze_track(t, services).fallback for t in ids)


def test_the_daily_token_budget_is_never_exceeded(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    # GIVEN a budget worth about three calls, and eight analyses asked for at once
    services = intel_services(**llm_settings(llm_server, llm_daily_token_budget=4500, llm_max_output_tokens=400))
    ids = load_tracks(services, 8)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda t: analyze_track(t, services), ids))
    budget = intel_for(services).budget.today()
    # THEN the calls that fit were made, the rest fell back, and used + reserved stayed within the limit
    assert budget["used"] + budget["reserved"] <= 4500 and budget["reserved"] == 0
    made = sum(not r.fallback for r in results)
    assert 1 <= made < 8 and llm_server.completions() == made
    assert {r.fallback_reason for r in results if r.fallback} == {"daily token budget spent"}
    assert budget["refused"] == 8 - made


def test_concurrent_requests_for_one_text_make_one_call(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    llm_server.latency_s = 0.3
    services = intel_services(**llm_settings(llm_server))
    tid = load_tracks(services, 1)[0]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: analyze_track(tid, services), range(6)))
    assert llm_server.completions() == 1
    assert all(not r.fallback for r in results) and sum(r.cached for r in results) == 5


def test_the_llm_cache_lives_in_redis_and_survives_a_new_process(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
    redis_url: str,  # noqa: F811
) -> None:
    settings = llm_settings(llm_server, redis_url=redis_url)
    first = intel_services(**settings)
    ids = load_tracks(first, 1)
    analyze_track(ids[0], first)
    with first.db.connection() as conn:  # the durable copy goes too: only the cache can answer
        conn.execute("DELETE FROM analyses")
        conn.commit()
    second = intel_services(**settings)
    assert analyze_track(ids[0], second).cached
    assert llm_server.completions() == 1
    assert intel_for(second).cache.health()["backend"] == "redis"


def test_jobs_are_analysed_from_the_queue_and_the_ledger_says_so(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    from functions.analyze.core import analyze_job

    services = intel_services(**llm_settings(llm_server))
    ids = load_tracks(services, 3)
    services.queue.enqueue_many([analyze_job(t, "h") for t in ids] + [analyze_job(999_999, "h")])
    outcome = run_analyze_batch(services)
    assert (outcome.claimed, outcome.done, outcome.dead) == (4, 3, 1)  # the missing track is poison
    assert scalar(services, "SELECT count(*) FROM ledger WHERE stage = 'analyzed' AND status = 'ok'") == 3


def test_the_distilled_predictor_takes_over_once_enough_labels_exist(
    intel_services: Callable[..., Services],  # noqa: F811
    llm_server: LlmServer,  # noqa: F811
) -> None:
    # GIVEN 120 LLM-labelled tracks with embeddings
    services = intel_services(
        **llm_settings(
            llm_server,
            distilled_min_labels=100,
            distilled_refit_every=1000,
            distilled_max_mae=1.5,
            # Hashed bag-of-words vectors stand in for the model here, so the predictor is (rightly)
            # less sure of itself than with real embeddings: ask for a little less confidence.
            analysis_min_confidence=0.45,
        )
    )
    router = intel_for(services).router
    router.background_refit = False
    rows = sample_rows()
    ids = load_tracks(services, len(rows))
    add_embeddings(services, ids)
    for tid in ids[:120]:
        analyze_track(tid, services)
    model = router.distilled
    # THEN a model was fitted on them, with its held-out error reported
    assert model is not None and model.labels >= 100
    assert 0 <= model.mae_quality <= 1.5
    assert scalar(services, "SELECT mae_quality FROM distilled_models ORDER BY id DESC LIMIT 1") == pytest.approx(
        model.mae_quality
    )
    # AND new tracks are answered by it when it is confident, without an LLM call
    before = llm_server.completions()
    later = [analyze_track(t, services) for t in ids[120:]]
    used = [a for a in later if a.analyzer.startswith("distilled:")]
    assert used, "the distilled predictor never answered"
    assert llm_server.completions() - before == len(later) - len(used)
