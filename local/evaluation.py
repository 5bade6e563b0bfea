"""Collect what each analyzer answers and what each search mode ranks for labelled tracks and queries.

The figures themselves come from :mod:`shared.intel.evaluation`; this module only talks to the
store, the embedders and the LLM. Analyzers are asked directly (rules, the distilled predictor the
router would use, one fresh LLM call per track), not through the router, so its caches and its
confidence threshold do not decide which analyzer is measured. LLM calls made here reserve from
the daily token budget and are written to the cost ledger like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from functions.api.tracks import HYBRID_POOL
from shared.intel import store as intel_store
from shared.intel.evaluation import Label, Prediction, SearchQuery, TrackAnswers, ndcg_at_k, recall_at_k
from shared.intel.features import compute_features
from shared.intel.llm import LlmError
from shared.intel.profile import Analysis, Profile
from shared.intel.rules import analyze_rules
from shared.models import content_hash
from shared.store.browse import TrackFilter
from shared.store.search import filtered_search, fuse_rrf, keyword_search
from shared.store.tracks import TrackStore

if TYPE_CHECKING:
    from shared.embedder.base import Embedder
    from shared.intel.context import Intel
    from shared.services import Services

__all__ = ["SEARCH_K", "SearchFigures", "collect_answers", "embedders_for", "search_figures"]

SEARCH_K = 10


def _prediction(profile: Profile, confidence: float, cost_usd: float = 0.0) -> Prediction:
    return Prediction(
        quality=float(profile.quality),
        sentiment=profile.sentiment,
        themes=tuple(profile.themes),
        confidence=confidence,
        cost_usd=cost_usd,
    )


def _from_analysis(analysis: Analysis) -> Prediction:
    return _prediction(analysis.profile, analysis.confidence, analysis.cost.usd)


def collect_answers(
    intel: Intel, labels: Sequence[Label], *, use_llm: bool = True
) -> tuple[list[Label], list[TrackAnswers], list[Label]]:
    """Every analyzer's answer per labelled track: (labels found, their answers, labels missing)."""
    db = intel.services.db
    router = intel.router
    found: list[Label] = []
    answers: list[TrackAnswers] = []
    missing: list[Label] = []
    distilled = router.distilled
    for label in labels:
        with db.connection() as conn:
            row = conn.execute(
                "SELECT id, artist, title, lyrics FROM tracks WHERE source = %s AND source_id = %s",
                (label.source, label.source_id),
            ).fetchone()
            vector = (
                TrackStore(conn).vector_of(int(row[0]), distilled.embedding_model)
                if row is not None and distilled is not None
                else None
            )
            conn.commit()
        if row is None:
            missing.append(label)
            continue
        track_id, artist, title, lyrics = int(row[0]), row[1], row[2], row[3]
        chash = content_hash(artist, title, lyrics)
        features = compute_features(lyrics)
        rules = analyze_rules(lyrics, features, chash)
        embedding = None if vector is None or distilled is None else (distilled.embedding_model, vector)
        candidate = router.distilled_candidate(rules, features, embedding)
        llm = _ask_llm(intel, track_id, artist, title, lyrics, chash) if use_llm else None
        found.append(label)
        answers.append(
            TrackAnswers(
                rules=_from_analysis(rules),
                distilled=None if candidate is None else _from_analysis(candidate),
                llm=llm,
            )
        )
    return found, answers, missing


def _ask_llm(intel: Intel, track_id: int, artist: str, title: str, lyrics: str, chash: str) -> Prediction | None:
    llm = intel.router.llm
    if llm is None:
        return None
    try:
        result = llm.analyze(artist, title, lyrics, reserve=intel.budget.reserve, settle=intel.budget.settle)
        attempts, prediction = result.attempts, _prediction(result.profile, 1.0, result.cost.usd)
    except LlmError as exc:
        # A failed call still cost tokens; the track counts as not answered by the LLM.
        attempts, prediction = exc.attempts, None
    with intel.services.db.connection() as conn:
        for a in attempts:
            intel_store.record_llm_call(
                conn,
                subject=f"eval:track:{track_id}",
                analyzer=llm.name,
                prompt_version=intel.router.prompt_version,
                content_hash=chash,
                outcome=a.outcome,
                tokens_in=a.tokens_in,
                tokens_out=a.tokens_out,
                cost_usd=a.cost_usd,
                duration_ms=a.duration_ms,
            )
        conn.commit()
    if prediction is None or not attempts:
        return prediction
    # What was paid, a repair request included: the sum of the ledger rows just written.
    return Prediction(
        quality=prediction.quality,
        sentiment=prediction.sentiment,
        themes=prediction.themes,
        confidence=prediction.confidence,
        cost_usd=sum(a.cost_usd for a in attempts),
    )


# -- search ---------------------------------------------------------------------------------------
@dataclass
class SearchFigures:
    model: str | None  # None for keyword search, which uses no embedding model
    mode: str
    queries: int
    recall_at_10: float
    ndcg_at_10: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "mode": self.mode,
            "queries": self.queries,
            "recall_at_10": self.recall_at_10,
            "ndcg_at_10": self.ndcg_at_10,
        }


def stored_models(svc: Services) -> list[str]:
    with svc.db.connection() as conn:
        rows = conn.execute("SELECT DISTINCT model FROM embeddings ORDER BY model").fetchall()
        conn.commit()
    return [str(r[0]) for r in rows]


def embedders_for(svc: Services, model_keys: Sequence[str]) -> dict[str, Embedder]:
    """An embedder per stored model key that a local model file produces (fp32, int8, ...)."""
    from shared.embedder.manifest import Manifest
    from shared.embedder.onnx import OnnxEmbedder

    settings = svc.settings
    manifest = Manifest.load(settings.resolved_model_dir)
    found: dict[str, Embedder] = {}
    for variant in manifest.variants:
        key = manifest.model_key(variant)
        if key in model_keys:
            if key == svc.embedder.model_key:
                found[key] = svc.embedder
            else:
                found[key] = OnnxEmbedder(
                    settings.resolved_model_dir, variant=variant, threads=settings.embed_threads, batch_size=8
                )
    return found


def search_figures(
    svc: Services, queries: Sequence[SearchQuery], embedders: dict[str, Embedder]
) -> list[SearchFigures]:
    """recall@10 and nDCG@10 for keyword search, and per model for semantic and hybrid search,
    with the ranking the search API uses (same pools, same fusion)."""
    k, ef = SEARCH_K, svc.settings.hnsw_ef_search
    flt = TrackFilter()
    keys: dict[int, tuple[str, str]] = {}
    runs: dict[tuple[str | None, str], list[tuple[float, float]]] = {}
    with svc.db.connection() as conn:

        def keyed(hits: Sequence[Any]) -> list[tuple[str, str]]:
            unknown = [h.id for h in hits if h.id not in keys]
            if unknown:
                for tid, source, source_id in conn.execute(
                    "SELECT id, source, source_id FROM tracks WHERE id = ANY(%s)", (unknown,)
                ).fetchall():
                    keys[int(tid)] = (str(source), str(source_id))
            return [keys[h.id] for h in hits]

        def score(model: str | None, mode: str, ranked: list[tuple[str, str]], q: SearchQuery) -> None:
            runs.setdefault((model, mode), []).append(
                (recall_at_k(ranked, q.relevant, k), ndcg_at_k(ranked, q.relevant, k))
            )

        for q in queries:
            pool = max(k, HYBRID_POOL)
            keyword = keyword_search(conn, q.query, pool, flt)
            score(None, "keyword", keyed(keyword[:k]), q)
            for model, embedder in embedders.items():
                vector = embedder.embed([q.query])[0]
                semantic = filtered_search(conn, vector, model, k, flt, ef_search=ef)
                score(model, "semantic", keyed(semantic), q)
                wide = filtered_search(conn, vector, model, pool, flt, ef_search=max(ef, pool))
                score(model, "hybrid", keyed(fuse_rrf([wide, keyword], k, query=q.query)), q)
        conn.commit()
    return [
        SearchFigures(
            model=model,
            mode=mode,
            queries=len(values),
            recall_at_10=round(sum(r for r, _ in values) / len(values), 4),
            ndcg_at_10=round(sum(n for _, n in values) / len(values), 4),
        )
        for (model, mode), values in runs.items()
    ]
