"""The analysis router: the cheapest answer that meets the confidence asked for.

Order for one text: a cached LLM answer (cache, then the ``analyses`` table for tracks) → the
rule-based analyzers (returned when confident enough, or when the caller asks for rules only) →
the distilled predictor (when fitted, accurate on held-out labels, and confident for this item) →
the LLM, if the breaker is closed and today's budget covers the call. Anything that keeps the LLM
from answering returns the rule-based result flagged ``fallback: true`` — never an error.

Concurrent requests for the same text share one LLM call (single flight), so a burst of repeats
costs one call, not one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from shared.cache.redis_cache import SharedCache
from shared.intel import store
from shared.intel.breaker import CircuitBreaker
from shared.intel.budget import TokenBudget
from shared.intel.distilled import DistilledModel, fit_distilled
from shared.intel.features import Features, compute_features
from shared.intel.llm import Attempt, LlmAnalyzer, LlmBudgetSpent, LlmInvalidOutput, LlmUnavailable
from shared.intel.profile import Analysis
from shared.intel.rules import RULES_VERSION, analyze_rules
from shared.metrics import ANALYSES, LLM_CALLS, LLM_COST, LLM_TOKENS
from shared.models import content_hash
from shared.store.db import Database

__all__ = ["Mode", "Router", "RouterStats", "distilled_input"]

log = logging.getLogger(__name__)

Mode = Literal["auto", "rules", "llm"]
_DISTILLED_RELOAD_S = 60.0


@dataclass
class RouterStats:
    requests: int = 0
    cache_hits: int = 0
    rules: int = 0
    distilled: int = 0
    llm_calls: int = 0  # analyses answered by a fresh LLM call
    llm_attempts: int = 0  # HTTP calls made (a repair is a second attempt)
    fallbacks: int = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def fallback(self, reason: str) -> None:
        with self._lock:
            self.fallbacks += 1
            self.fallback_reasons[reason] = self.fallback_reasons.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {k: v for k, v in self.__dict__.items() if not k.startswith("_")} | {
                "fallback_reasons": dict(self.fallback_reasons)
            }


def distilled_input(embedding: np.ndarray, features: Features) -> np.ndarray:
    return np.concatenate([np.asarray(embedding, dtype=np.float64), np.asarray(features.vector())])


class Router:
    def __init__(
        self,
        *,
        db: Database,
        cache: SharedCache,
        breaker: CircuitBreaker,
        budget: TokenBudget,
        llm: LlmAnalyzer | None,
        prompt_version: str,
        min_confidence: float,
        distilled_min_labels: int = 150,
        distilled_refit_every: int = 100,
        distilled_max_mae: float = 1.0,
        background_refit: bool = True,
    ) -> None:
        self.db = db
        self.cache = cache
        self.breaker = breaker
        self.budget = budget
        self.llm = llm
        self.prompt_version = prompt_version
        self.min_confidence = min_confidence
        self.distilled_min_labels = distilled_min_labels
        self.distilled_refit_every = distilled_refit_every
        self.distilled_max_mae = distilled_max_mae
        self.background_refit = background_refit
        self.stats = RouterStats()
        self._flights: dict[str, threading.Event] = {}
        self._flight_lock = threading.Lock()
        self._distilled: DistilledModel | None = None
        self._distilled_checked = 0.0
        self._labels_since_fit = 0
        self._fit_lock = threading.Lock()
        self._fitting = False

    @property
    def llm_name(self) -> str:
        return self.llm.name if self.llm is not None else "llm:none"

    # -- the one entry point ---------------------------------------------------------------------
    def analyze(
        self,
        *,
        artist: str,
        title: str,
        lyrics: str,
        track_id: int | None = None,
        embedding: tuple[str, np.ndarray] | None = None,
        mode: Mode = "auto",
        min_confidence: float | None = None,
    ) -> Analysis:
        self.stats.add(requests=1)
        threshold = self.min_confidence if min_confidence is None else min_confidence
        chash = content_hash(artist, title, lyrics)
        if mode != "rules":
            known = self._known_llm(chash, track_id)
            if known is not None:
                self.stats.add(cache_hits=1)
                ANALYSES.labels("cache").inc()
                return known
        features = compute_features(lyrics)
        rules, rules_cached = self._rules(lyrics, features, chash)
        if track_id is not None and not rules_cached:
            self._save(track_id, rules)  # every track keeps its rule-based profile, whatever answers
        if mode == "rules" or (mode == "auto" and rules.confidence >= threshold):
            self.stats.add(rules=1, cache_hits=int(rules_cached))
            ANALYSES.labels("rules").inc()
            return rules
        if mode == "auto":
            distilled = self._distilled_answer(rules, features, embedding, threshold)
            if distilled is not None:
                self.stats.add(distilled=1)
                ANALYSES.labels("distilled").inc()
                if track_id is not None:
                    self._save(track_id, distilled)
                return distilled
        return self._llm_single_flight(artist, title, lyrics, chash, track_id, rules)

    # -- cached answers -------------------------------------------------------------------------
    def _llm_key(self, chash: str) -> str:
        return f"{chash}:{self.llm_name}:{self.prompt_version}"

    def _known_llm(self, chash: str, track_id: int | None) -> Analysis | None:
        if self.llm is None:
            return None
        hit = self.cache.get_kind("analysis", self._llm_key(chash))
        if hit is not None:
            return Analysis.model_validate(hit).model_copy(update={"cached": True})
        if track_id is None:
            return None
        with self.db.connection() as conn:
            stored = store.get_analysis(conn, track_id, self.llm_name, self.prompt_version, chash)
            conn.commit()
        if stored is None:
            return None
        self.cache.set_kind("analysis", self._llm_key(chash), stored.model_dump(mode="json"))
        return stored.model_copy(update={"cached": True})

    def _rules(self, lyrics: str, features: Features, chash: str) -> tuple[Analysis, bool]:
        key = f"{chash}:rules:{RULES_VERSION}"
        hit = self.cache.get_kind("analysis", key)
        if hit is not None:
            return Analysis.model_validate(hit).model_copy(update={"cached": True}), True
        result = analyze_rules(lyrics, features, chash)
        self.cache.set_kind("analysis", key, result.model_dump(mode="json"))
        return result, False

    # -- distilled ------------------------------------------------------------------------------
    @property
    def distilled(self) -> DistilledModel | None:
        now = time.monotonic()
        if now - self._distilled_checked > _DISTILLED_RELOAD_S:
            self._distilled_checked = now
            self._load_distilled()
        return self._distilled

    def _load_distilled(self) -> None:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT id, params FROM distilled_models WHERE name = %s ORDER BY id DESC LIMIT 1",
                (self._distilled_name,),
            ).fetchone()
            conn.commit()
        if row is not None and (self._distilled is None or self._distilled.id != int(row[0])):
            self._distilled = DistilledModel.from_bytes(bytes(row[1]), model_id=int(row[0]))

    @property
    def _distilled_name(self) -> str:
        return f"{self.llm_name}:{self.prompt_version}"

    def _distilled_answer(
        self, rules: Analysis, features: Features, embedding: tuple[str, np.ndarray] | None, threshold: float
    ) -> Analysis | None:
        model = self.distilled
        if model is None or embedding is None or model.mae_quality > self.distilled_max_mae:
            return None
        if embedding[0] != model.embedding_model:
            return None
        pred = model.predict(distilled_input(embedding[1], features))
        conf = dict(rules.field_confidence)
        conf["quality"] = conf["sentiment"] = pred.confidence
        overall = min(conf.values())
        if overall < threshold:
            return None
        profile = rules.profile.model_copy(update={"quality": round(pred.quality), "sentiment": pred.sentiment})
        return Analysis(
            analyzer=f"distilled:{model.id}",
            prompt_version=self.prompt_version,
            content_hash=rules.content_hash,
            profile=profile,
            confidence=round(overall, 3),
            field_confidence=conf,
        )

    def distilled_candidate(
        self, rules: Analysis, features: Features, embedding: tuple[str, np.ndarray] | None
    ) -> Analysis | None:
        """What the distilled predictor would answer at any threshold (None: it may not answer here,
        e.g. unfitted, too inaccurate, or fitted on another embedding model). Evaluation compares
        its ``confidence`` with candidate thresholds instead of asking once per threshold."""
        return self._distilled_answer(rules, features, embedding, 0.0)

    def refit(self) -> DistilledModel | None:
        """Fit on every LLM label of the current prompt version; store and use it. None if too few."""
        with self.db.connection() as conn:
            model_key, rows = store.llm_labels(conn, self.llm_name, self.prompt_version)
            conn.commit()
        if len(rows) < self.distilled_min_labels or model_key is None:
            return None
        x = np.vstack([distilled_input(vec, compute_features(lyrics)) for _, _, vec, lyrics in rows])
        quality = np.array([float(r[1]["profile"]["quality"]) for r in rows])
        sentiment = [str(r[1]["profile"]["sentiment"]) for r in rows]
        model = fit_distilled(x, quality, sentiment)
        model.embedding_model = model_key
        with self.db.connection() as conn:
            row = conn.execute(
                "INSERT INTO distilled_models (name, labels, mae_quality, acc_sentiment, params)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (self._distilled_name, model.labels, model.mae_quality, model.acc_sentiment, model.to_bytes()),
            ).fetchone()
            conn.commit()
        model.id = int(row[0]) if row else 0
        self._distilled = model
        self._distilled_checked = time.monotonic()
        log.info("distilled predictor %d: %d labels, held-out MAE %.3f", model.id, model.labels, model.mae_quality)
        return model

    def _note_label(self) -> None:
        with self._fit_lock:
            self._labels_since_fit += 1
            due = self._labels_since_fit >= (
                self.distilled_refit_every if self._distilled is not None else self.distilled_min_labels
            )
            if not due or self._fitting:
                return
            self._fitting = True
            self._labels_since_fit = 0

        def run() -> None:
            try:
                self.refit()
            except Exception:
                log.exception("distilled refit failed")
            finally:
                with self._fit_lock:
                    self._fitting = False

        if self.background_refit:
            threading.Thread(target=run, name="distilled-refit", daemon=True).start()
        else:
            run()

    # -- LLM ------------------------------------------------------------------------------------
    def _llm_single_flight(
        self, artist: str, title: str, lyrics: str, chash: str, track_id: int | None, rules: Analysis
    ) -> Analysis:
        key = self._llm_key(chash)
        with self._flight_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = threading.Event()
        if leader:
            try:
                return self._llm(artist, title, lyrics, chash, track_id, rules)
            finally:
                with self._flight_lock:
                    self._flights.pop(key, None)
                flight.set()
        flight.wait(self.llm.timeout_s * 2 + 5 if self.llm is not None else 5)
        hit = self.cache.get_kind("analysis", key)
        if hit is not None:
            self.stats.add(cache_hits=1)
            ANALYSES.labels("cache").inc()
            return Analysis.model_validate(hit).model_copy(update={"cached": True})
        # The leader's call failed (and it fell back); so does every request that waited on it.
        return self._fallback(rules, "llm unavailable")

    def _llm(self, artist: str, title: str, lyrics: str, chash: str, track_id: int | None, rules: Analysis) -> Analysis:
        if self.llm is None:
            return self._fallback(rules, "llm not configured")
        if not self.breaker.allow():
            return self._fallback(rules, "llm circuit open")
        subject = f"track:{track_id}" if track_id is not None else f"text:{chash[:32]}"
        try:
            result = self.llm.analyze(artist, title, lyrics, reserve=self.budget.reserve, settle=self.budget.settle)
        except LlmBudgetSpent as exc:
            self._ledger(subject, chash, exc.attempts)
            return self._fallback(rules, "daily token budget spent")
        except LlmUnavailable as exc:
            self.breaker.record_failure(exc.retry_after_s)
            self._ledger(subject, chash, exc.attempts)
            return self._fallback(rules, "llm unavailable")
        except LlmInvalidOutput as exc:
            self.breaker.record_success()  # it answered: the service is up, the answer was bad
            self._ledger(subject, chash, exc.attempts)
            return self._fallback(rules, "llm answer invalid")
        self.breaker.record_success()
        self.stats.add(llm_calls=1)
        ANALYSES.labels("llm").inc()
        analysis = Analysis(
            analyzer=self.llm.name,
            prompt_version=self.prompt_version,
            content_hash=chash,
            profile=result.profile,
            confidence=0.9,
            field_confidence=dict.fromkeys(("sentiment", "themes", "complexity", "quality"), 0.9),
            cost=result.cost,
        )
        self.cache.set_kind("analysis", self._llm_key(chash), analysis.model_dump(mode="json"))
        with self.db.connection() as conn:
            self._ledger_rows(conn, subject, chash, result.attempts)
            if track_id is not None:
                store.save_analysis(conn, track_id, analysis)
            conn.commit()
        if track_id is not None:
            self._note_label()
        return analysis

    def _fallback(self, rules: Analysis, reason: str) -> Analysis:
        """The rule-based result flagged as a fallback; ``cached`` stays as the rules had it (true
        when they came from the analysis cache), like every other answer from the cache."""
        self.stats.fallback(reason)
        ANALYSES.labels("fallback").inc()
        return rules.model_copy(update={"fallback": True, "fallback_reason": reason})

    def _save(self, track_id: int, analysis: Analysis) -> None:
        with self.db.connection() as conn:
            store.save_analysis(conn, track_id, analysis.model_copy(update={"cached": False}))
            conn.commit()

    def _ledger(self, subject: str, chash: str, attempts: list[Attempt]) -> None:
        if not attempts:
            return
        with self.db.connection() as conn:
            self._ledger_rows(conn, subject, chash, attempts)
            conn.commit()

    def _ledger_rows(self, conn: Any, subject: str, chash: str, attempts: list[Attempt]) -> None:
        self.stats.add(llm_attempts=len(attempts))
        for a in attempts:
            LLM_CALLS.labels(self.llm_name, a.outcome).inc()
            LLM_TOKENS.labels(self.llm_name, "in").inc(a.tokens_in)
            LLM_TOKENS.labels(self.llm_name, "out").inc(a.tokens_out)
            LLM_COST.labels(self.llm_name).inc(a.cost_usd)
            store.record_llm_call(
                conn,
                subject=subject,
                analyzer=self.llm_name,
                prompt_version=self.prompt_version,
                content_hash=chash,
                outcome=a.outcome,
                tokens_in=a.tokens_in,
                tokens_out=a.tokens_out,
                cost_usd=a.cost_usd,
                duration_ms=a.duration_ms,
            )
