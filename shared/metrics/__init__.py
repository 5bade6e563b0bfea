"""The product's metrics: one process-wide Prometheus registry and the instruments the core updates.

Hot paths only increment a counter or observe a histogram (a dict lookup and an add under the
client's lock); anything that needs a query — queue depth and age, dead letters, today's LLM
budget — is read when scraped, by :mod:`shared.metrics.state`. Where the figures go depends on the
runtime: the local API serves :func:`exposition` at ``/metrics``; on AWS the platform layer turns
the registry into EMF lines after each invocation; on GCP it pushes OTLP (both in
:mod:`shared.metrics.export`).

Counters are named without ``_total`` here: the client adds it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

__all__ = [
    "ANALYSES",
    "BREAKER_STATE",
    "CACHE_REQUESTS",
    "EMBED_SECONDS",
    "EMBED_TEXTS",
    "HTTP_REQUESTS",
    "HTTP_SECONDS",
    "INGEST_OBJECTS",
    "INGEST_ROWS",
    "INGEST_SECONDS",
    "JOBS",
    "JOB_SECONDS",
    "LLM_CALLS",
    "LLM_COST",
    "LLM_TOKENS",
    "REGISTRY",
    "exposition",
]

# A ``_created`` series per counter doubles the exposition and no panel or alarm reads it.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)

# Request latency: buckets around the search p95 target (tens of ms) up to slow analyses.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A job: one track's enrichment or analysis, or one embed batch.
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "contentfn_http_requests",
    "API requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "contentfn_http_request_duration_seconds",
    "API request latency in the core (routing, auth, handler, serialisation), by route and status class.",
    ["route", "status_class"],
    buckets=_HTTP_BUCKETS,
    registry=REGISTRY,
)
JOBS = Counter(
    "contentfn_jobs",
    "Jobs settled by a pipeline stage, by kind and outcome (done, retried, dead).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "contentfn_job_duration_seconds",
    "Time to settle one job (embed: one batch), by kind.",
    ["kind"],
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
INGEST_OBJECTS = Counter(
    "contentfn_ingest_objects",
    "Uploaded objects handled, by kind of object (tracks, image) and status (ok, partial, failed, rejected).",
    ["object", "status"],
    registry=REGISTRY,
)
INGEST_SECONDS = Histogram(
    "contentfn_ingest_duration_seconds",
    "Time to ingest one uploaded object (parse, upsert, enqueue), by kind of object (tracks, image).",
    ["object"],
    buckets=_JOB_BUCKETS,
    registry=REGISTRY,
)
INGEST_ROWS = Counter(
    "contentfn_ingest_rows",
    "Rows read from uploaded track files, by outcome (ok, bad).",
    ["outcome"],
    registry=REGISTRY,
)
EMBED_TEXTS = Counter(
    "contentfn_embedded_texts",
    "Texts embedded and written as vectors, by model.",
    ["model"],
    registry=REGISTRY,
)
EMBED_SECONDS = Counter(
    "contentfn_embed_seconds",
    "Seconds inside the embedding model, by model (texts / seconds is the embed rate).",
    ["model"],
    registry=REGISTRY,
)
CACHE_REQUESTS = Counter(
    "contentfn_cache_requests",
    "Shared cache look-ups, by kind (analysis, page, token, query) and result (hit, miss).",
    ["kind", "result"],
    registry=REGISTRY,
)
ANALYSES = Counter(
    "contentfn_analyses",
    "Analyses answered by the router, by route (cache, rules, distilled, llm, fallback).",
    ["route"],
    registry=REGISTRY,
)
LLM_CALLS = Counter(
    "contentfn_llm_calls",
    "HTTP calls to the LLM, by analyzer and outcome (ok, invalid, error).",
    ["analyzer", "outcome"],
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "contentfn_llm_tokens",
    "Tokens the LLM reported, by analyzer and direction (in, out).",
    ["analyzer", "direction"],
    registry=REGISTRY,
)
LLM_COST = Counter(
    "contentfn_llm_cost_usd",
    "Cost of LLM calls in US dollars, by analyzer.",
    ["analyzer"],
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "contentfn_breaker_state",
    "Circuit breaker state as this process last saw it: 0 closed, 1 half-open, 2 open.",
    ["breaker"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    """The registry in the Prometheus text format (what ``/metrics`` serves)."""
    return generate_latest(REGISTRY)
