"""``/health`` and ``/stats``: whether the parts answer, and what the store holds."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.api.routing import Call
from shared.intel.context import built_intel
from shared.store.registry import model_progress
from shared.store.stats import read_stats
from shared.store.tracks import TrackStore
from shared.vision.capacity import measured_instance_rate

__all__ = ["Health", "Stats", "health", "stats"]

log = logging.getLogger(__name__)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelHealth(_Answer):
    ready: bool
    key: str | None
    search_index: Literal["hnsw", "exact"] | None = Field(
        default=None, description="exact while a bulk backlog is embedded before the HNSW build"
    )


class CacheHealth(BaseModel):
    # The analysis cache reports what its backend knows (Redis adds its own figures): open by design.
    model_config = ConfigDict(extra="allow")

    status: str


class Health(_Answer):
    status: Literal["ok", "degraded"]
    db: Literal["ok", "unavailable"]
    queue_depth: int | None = None
    dead_jobs: int | None = None
    model: ModelHealth
    cache: CacheHealth | None = Field(default=None, description="present once this process built its analyzer")


class Counted(_Answer):
    total: int


class QueueStats(_Answer):
    depth: int
    by_kind: dict[str, int]


class DeadStats(Counted):
    by_kind: dict[str, int]


class ImageStats(Counted):
    by_status: dict[str, int]


class StreamStats(Counted):
    by_status: dict[str, int]


class GpuStats(_Answer):
    workers: int
    img_per_s_per_instance: float | None


class BudgetDay(_Answer):
    token_limit: int
    used: int
    reserved: int
    refused: int


class LlmToday(_Answer):
    calls: int
    ok: int
    tokens: int
    cost_usd: float
    budget: BudgetDay | None


class QueryCache(_Answer):
    hits: int | None
    misses: int | None


class ModelStats(_Answer):
    key: str
    state: Literal["shadow", "active"]
    provider: str
    dimensions: int
    embedded: int = Field(description="tracks with a vector of the current content")
    percent: float = Field(description="backfill progress: embedded tracks per 100 tracks")
    index: Literal["valid", "invalid", "missing"]
    backfill_done: bool


class Stats(_Answer):
    tracks: int
    embeddings: dict[str, int] = Field(description="vectors per model")
    stages: dict[str, dict[str, int]] = Field(description="stage -> status -> objects")
    queue: QueueStats
    dead_jobs: DeadStats
    images: ImageStats
    streams: StreamStats
    gpu: GpuStats
    llm_today: LlmToday
    query_cache: QueryCache
    models: list[ModelStats] = Field(description="registered embedding models, not retired, with backfill progress")


def health(call: Call) -> Health:
    svc = call.services
    out: dict[str, Any] = {"status": "ok"}
    try:
        out["queue_depth"] = svc.queue.depth()
        out["dead_jobs"] = svc.queue.dead_count()
        out["db"] = "ok"
    except Exception as exc:
        log.warning("health: database check failed: %s", type(exc).__name__)
        out.update(status="degraded", db="unavailable")
    model_ready = svc.has_embedder or (svc.settings.resolved_model_dir / "manifest.json").is_file()
    out["model"] = {"ready": model_ready, "key": svc.embedder.model_key if svc.has_embedder else None}
    if not model_ready:
        out["status"] = "degraded"
    if svc.has_embedder and out.get("db") == "ok":
        # "exact" while a bulk backlog is embedded before the HNSW build (functions.embed.index);
        # the index that counts is the one of the model search reads (the registry's active one).
        try:
            search_key = svc.search_model_key()
            out["model"]["key"] = search_key
            with svc.db.connection() as conn:
                state = TrackStore(conn).hnsw_index_state(search_key)
                conn.commit()
            out["model"]["search_index"] = "hnsw" if state == "valid" else "exact"
        except Exception as exc:
            log.warning("health: index check failed: %s", type(exc).__name__)
            out.update(status="degraded", db="unavailable")
    # Only an analyzer this process already built reports its cache: a health probe builds nothing.
    intel = built_intel(svc)
    if intel is not None:
        cache = intel.cache.health()
        out["cache"] = cache
        if cache["status"] != "ok":
            out["status"] = "degraded"
    return Health.model_validate(out)


def stats(call: Call) -> Stats:
    svc = call.services
    with svc.db.connection() as conn:
        counts = read_stats(conn)
        drain = measured_instance_rate(conn)
        models = model_progress(conn)
        conn.commit()
    llm, budget, cache = counts.llm_today, counts.llm_today.budget, svc.cache
    return Stats.model_validate(
        {
            "tracks": counts.tracks,
            "embeddings": counts.embeddings,
            "stages": counts.stages,
            "queue": {"depth": sum(counts.jobs.values()), "by_kind": counts.jobs},
            "dead_jobs": {"total": sum(counts.dead_jobs.values()), "by_kind": counts.dead_jobs},
            "images": {"total": sum(counts.images.values()), "by_status": counts.images},
            "streams": {"total": sum(counts.streams.values()), "by_status": counts.streams},
            "gpu": {
                "workers": counts.gpu_workers,
                "img_per_s_per_instance": None if drain is None else round(drain, 2),
            },
            "llm_today": {
                "calls": llm.calls,
                "ok": llm.ok,
                "tokens": llm.tokens,
                "cost_usd": round(llm.cost_usd, 6),
                "budget": None if budget is None else asdict(budget),
            },
            "query_cache": {"hits": getattr(cache, "hits", None), "misses": getattr(cache, "misses", None)},
            "models": [{**{k: v for k, v in asdict(m).items() if k != "tracks"}, "percent": m.percent} for m in models],
        }
    )
