"""Process configuration: one ``Settings`` object, env prefix ``CONTENTFN_``.

Invalid configuration fails at start with one :class:`~shared.errors.ConfigError` that names the
environment variable, so a typo never surfaces later as a confusing runtime failure.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError
from shared.scrape_sources import ScrapeSource

__all__ = ["Settings", "get_settings", "load_settings"]

ENV_PREFIX = "CONTENTFN_"


class Settings(BaseSettings):
    """Every knob of every process. Field ``foo_bar`` is read from ``CONTENTFN_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)
    # --- Storage and database ---------------------------------------------------------------
    data_dir: Path = Field(
        default=Path(".contentfn"), description="Local state: the embedded database, local buckets, models."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="External PostgreSQL with pgvector; unset means the embedded server under the data directory.",
    )
    db_pool_min: int = Field(default=1, ge=1, le=64, description="Connections the pool keeps open.")
    db_pool_max: int = Field(default=8, ge=1, le=256, description="Connections the pool may open at most.")
    db_statement_timeout_ms: int = Field(
        default=30_000, ge=100, description="PostgreSQL `statement_timeout` of every pooled connection."
    )
    db_connect_timeout_s: int = Field(
        default=5,
        ge=2,
        le=300,
        description=(
            "PostgreSQL `connect_timeout`: a connection attempt to a server that does not answer"
            " (down, failing over, a black-holed address) is given up after this long."
        ),
    )
    db_pool_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Longest wait for a pooled connection; past it the request answers 503 with `Retry-After`"
            " (a job is retried) instead of hanging while the database is away."
        ),
    )
    db_keepalives_idle_s: int = Field(
        default=30,
        ge=1,
        description=(
            "TCP keepalive: idle seconds before the first probe, so a connection to a server that"
            " vanished (failover, a dropped NAT entry) is found dead instead of hanging."
        ),
    )
    db_keepalives_interval_s: int = Field(default=10, ge=1, description="TCP keepalive: seconds between probes.")
    db_keepalives_count: int = Field(
        default=3, ge=1, description="TCP keepalive: unanswered probes after which the connection is dropped."
    )
    database_credentials_secret: str | None = Field(
        default=None,
        description=(
            'AWS Secrets Manager secret holding `{"username", "password"}`, read at connect time beside a'
            " `CONTENTFN_DATABASE_URL` without a password, so a rotated password reaches running processes."
            " With `CONTENTFN_DATABASE_RDS_INSTANCE` the instance gives the endpoint and this secret the login"
            " (a function's own runtime role instead of the master user)."
        ),
    )
    database_rds_instance: str | None = Field(
        default=None,
        description=(
            "An RDS instance (ARN or identifier; Terraform sets it when it creates the database): each process"
            " asks RDS once for its endpoint (unless `CONTENTFN_DATABASE_URL` is set: a proxy or a tunnel) and its"
            " managed master secret (which RDS rotates every 7 days), and every new connection logs in with the"
            " secret's current value. A refused connection re-reads the secret and tries once more in the same"
            " call, not re-reading again for 5 s after a read that found nothing new; open sessions are unaffected."
        ),
    )
    database_ssl_root_cert: Path | None = Field(
        default=None,
        description=(
            "CA bundle the database's server certificate is checked against (`sslmode=verify-full`):"
            " with `CONTENTFN_DATABASE_RDS_INSTANCE` it is required, and the function and GPU images ship"
            " Amazon RDS's global bundle (`global-bundle.pem`, from truststore.pki.rds.amazonaws.com) at"
            " the path Terraform sets. Unset: the URL's own `sslmode` and `sslrootcert` apply."
        ),
    )
    database_ca_cert: str | None = Field(
        default=None,
        description=(
            "PEM of the CA the database server's certificate is verified against, as text (Terraform passes"
            " Cloud SQL's server CA): written to a private file and used as the connection's `sslrootcert`,"
            " with `sslmode=verify-full` unless the URL names another mode."
        ),
    )
    database_iam_auth: bool = Field(
        default=False,
        description=(
            "Cloud SQL IAM database authentication: `CONTENTFN_DATABASE_URL` names the login (the process's"
            " service account as an IAM database user) and no password; every new connection gives a fresh"
            " OAuth access token of that account (from the platform's default credentials) as the password."
            " No password is stored anywhere."
        ),
    )
    database_role_secrets: dict[str, str] = Field(
        default_factory=dict,
        description=(
            'Function → Secrets Manager secret holding its runtime role\'s `{"username", "password"}` (JSON;'
            " Terraform sets it on the migrator): `contentfn db roles` sets each role's password from it."
        ),
    )
    aws_endpoint_url: str | None = Field(
        default=None, description="Endpoint of the AWS APIs for an emulator (moto server); unset in the cloud."
    )
    aws_region: str | None = Field(default=None, description="AWS region of the clients; unset: the SDK's own.")

    # --- Embeddings and the vector index ------------------------------------------------------
    model_dir: Path | None = Field(
        default=None,
        description="Model files produced by `make model`; unset means `<data_dir>/models/all-MiniLM-L6-v2`.",
    )
    embed_variant: Literal["fp32", "int8"] = Field(default="fp32", description="Which exported embedding model runs.")
    embed_batch_size: int = Field(default=32, ge=1, le=1024, description="Texts per embedder call.")
    embed_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description=(
            "Embedder threads; 0: automatic: one in a process that only serves the API (each request embeds "
            "one query, and requests run side by side), onnxruntime's choice elsewhere (batches)."
        ),
    )
    embed_api_key: SecretStr | None = Field(
        default=None, description="API key of the OpenAI-compatible endpoint of registered `openai` embedding models."
    )
    embed_backfill_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Share of embed batches a worker gives to shadow-model backfill while new uploads wait;"
        " with no upload waiting, backfill takes every batch.",
    )
    embed_backfill_batch: int = Field(
        default=64, ge=1, le=4096, description="Tracks re-embedded per backfill step of a shadow model."
    )
    # Measured by `make bench-search` (57,718 clustered tracks, m=16, 2 cores): with ef_construction=64,
    # recall@10 against an exact scan is 0.85 at ef_search=64 and needs ef_search=800 for 0.96; with
    # ef_construction=200 (index build 18 s instead of 9 s) it is 0.946 at 100, 0.976 at 200 and 0.981
    # at 300, with the SQL p95 under 5 ms.
    hnsw_ef_search: int = Field(
        default=200, ge=10, le=1000, description="HNSW `ef_search` of vector queries: recall against speed."
    )
    hnsw_m: int = Field(default=16, ge=4, le=100, description="HNSW `m` of a new index.")
    hnsw_ef_construction: int = Field(
        default=200, ge=16, le=1000, description="HNSW `ef_construction` of a new index: recall against build time."
    )
    # Incremental HNSW inserts during a 57,718-track load cost the pipeline a quarter of its speed on 2 cores.
    hnsw_defer_backlog: int = Field(
        default=2_000,
        ge=0,
        description=(
            "While a model has no HNSW index yet and at least this many embed jobs wait, the index is not built:"
            " a bulk load embeds first (search does an exact scan meanwhile, `/health` says `search_index: exact`)"
            " and the index is built once, concurrently, when the backlog falls below this. 0: build it at once."
        ),
    )
    hnsw_build_mem_mb: int = Field(
        default=512, ge=16, le=65_536, description="`maintenance_work_mem` of the HNSW index build."
    )

    # --- Uploads ------------------------------------------------------------------------------
    bucket: str = Field(
        default="uploads",
        min_length=3,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9._-]+$",
        description="The upload bucket (locally a folder under `<data_dir>/buckets`).",
    )
    max_upload_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1, description="Larger uploads are refused before they are read."
    )
    upload_prefix: str = Field(
        default="incoming/",
        min_length=2,
        max_length=100,
        pattern=r"^[a-z0-9][a-z0-9._-]*/$",
        description=(
            "Key prefix of the files uploaded through the API (`POST /uploads`): the only prefix the API may"
            " write or sign uploads for (the cloud bucket policy grants just this one)."
        ),
    )
    upload_url_ttl_s: int = Field(
        default=900, ge=60, le=7 * 86400, description="Lifetime of a signed upload URL `POST /uploads` answers."
    )
    upload_name_max_chars: int = Field(
        default=200, ge=8, le=900, description="Longest file name `POST /uploads` takes (the key adds the prefix)."
    )
    max_field_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="A row with a field longer than this (UTF-8 bytes) is reported bad; the others are kept.",
    )
    max_record_bytes: int | None = Field(
        default=None,
        ge=1024,
        description=(
            "A record larger than this (bytes of the file) is stopped while it is parsed, never built in"
            " memory: a `.jsonl` line is reported bad and the others are kept; a `.json` record or a CSV"
            " line refuses the file from there (their parsers cannot find the next record). Unset: 16 times"
            " max_field_bytes."
        ),
    )
    ingest_batch_rows: int = Field(default=5_000, ge=1, description="Rows per bulk upsert (`COPY`) of an ingest.")
    bad_rows_reported: int = Field(
        default=100, ge=0, description="Bad rows of one file reported with line and reason; the rest are counted."
    )

    # --- Queue and retries --------------------------------------------------------------------
    queue_visibility_s: float = Field(
        default=120.0, gt=0, description="Lease of a claimed job: unacknowledged by then, it is claimed again."
    )
    queue_max_attempts: int = Field(
        default=5, ge=1, le=100, description="Attempts of a job before it goes to the dead-letter store."
    )
    queue_backoff_base_s: float = Field(
        default=2.0, gt=0, description="First retry delay; doubled per attempt, with jitter."
    )
    queue_backoff_cap_s: float = Field(default=300.0, gt=0, description="Longest retry delay.")
    idempotency_ttl_s: float = Field(
        default=900.0,
        gt=0,
        description="How long a delivery in progress holds off duplicates of its event (told to retry); a crashed one"
        " is taken over after it. Used only where function_timeout_s is unset.",
    )
    function_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="The platform's timeout of this function (Terraform sets it from the function's own): a delivery"
        " in progress holds off duplicates until just past it, when the platform has stopped that delivery, so"
        " retries of a crashed one are not refused.",
    )
    dead_letter_sources: dict[str, str] = Field(
        default_factory=dict,
        description="Cloud dead-letter queue → the job kind (or function) it holds (JSON; Terraform sets it): SQS DLQ"
        " URLs and Pub/Sub dead-letter subscriptions (`projects/P/subscriptions/S`) that `contentfn dead import` and"
        " the scheduled import drain into the dead-letter store.",
    )
    worker_poll_s: float = Field(default=0.2, gt=0, description="Local workers: pause between empty queue polls.")
    worker_failure_backoff_cap_s: float = Field(
        default=15.0,
        gt=0,
        description=(
            "Local workers: longest pause after a failed iteration (the database away, claims failing);"
            " the pause doubles from worker_poll_s per failure in a row, with jitter, and the worker resumes"
            " on its own once an iteration succeeds."
        ),
    )

    # Local bucket watcher. Poison input is refused by ingest at once; these cover an object whose
    # ingest fails unexpectedly (a crash in a parser, the database or ledger write failing, a file
    # that cannot be read), so that one object never holds up the ones after it.
    bucket_max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Tries of one object version by the local bucket watcher before it is recorded as failed"
        " in the ledger and the dead-letter store and passed over.",
    )
    bucket_backoff_base_s: float = Field(
        default=1.0,
        gt=0,
        description="Delay before the local bucket watcher's second try of a failed object; doubles per try,"
        " with jitter, up to bucket_backoff_cap_s.",
    )
    bucket_backoff_cap_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest delay between two tries of one object by the local bucket watcher.",
    )

    # --- HTTP API -----------------------------------------------------------------------------
    api_host: str = Field(default="127.0.0.1", description="Where the local API listens.")
    api_port: int = Field(default=8080, ge=0, le=65535, description="Port of the local API.")
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "A key (`X-API-Key` or `Authorization: Bearer`) required, with the named keys of `contentfn keys`, on"
            " every route but `/health`, `/openapi.json` and `/docs`. It acts as the admin-scoped key named `env`;"
            " a cloud runtime refuses to start without one of at least 32 characters."
        ),
    )
    require_api_key: bool = Field(
        default=False,
        description=(
            "Require a key even when `CONTENTFN_API_KEY` is unset: only the named keys of `contentfn keys` are"
            " accepted. Unset and without `CONTENTFN_API_KEY`, the local API takes no key."
        ),
    )
    api_requests_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests one key may make per minute (a key's own quota overrides it); 0: no per-minute quota.",
    )
    api_key_cache_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "How long the API trusts a named key it looked up before asking the database again: a revoked key (or a"
            " rotated-out secret past its grace) is refused within this many seconds; 0: looked up on every request."
        ),
    )
    api_llm_per_day: int = Field(
        default=200,
        ge=0,
        description="`POST /analyze` calls with `mode: llm` one key may make per day (a key's own quota overrides it).",
    )
    search_max_k: int = Field(default=100, ge=1, le=1000, description="Largest `k` a search may ask for.")
    search_max_query_chars: int = Field(default=1000, ge=1, description="Longest search query.")
    search_model_cache_s: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description=(
            "How long a process reuses the registry's active model for search before reading it again: an activate"
            " or rollback made by another process reaches search within this many seconds (at once in the API"
            " process that made it); 0: read on every search."
        ),
    )
    query_cache_entries: int = Field(
        default=2048, ge=0, description="Query vectors kept in process, under a hash of the query."
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    otel_exporter_endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP/HTTP endpoint spans are exported to (`/v1/traces` is added unless given): a collector, or the"
            " OTLP endpoint of X-Ray or Cloud Trace. Unset: no spans are exported, but the trace context of"
            " incoming jobs still travels on with the jobs they cause."
        ),
    )
    otel_sample_ratio: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Share of traces recorded, decided at the upload event; every later stage follows it.",
    )

    # --- Content intelligence: cache, outbound HTTP, scrape, enrich, analyze ------------------
    redis_url: SecretStr | None = Field(
        default=None,
        description=(
            "Redis for the caches (query vectors under a hash of the query, pages, tokens, analyses), breaker state"
            " and shared rate limits, shared by every instance; unset (or down) means in-process, and `/health`"
            " says so."
        ),
    )
    redis_timeout_s: float = Field(default=0.25, gt=0, le=30, description="Timeout of one Redis call.")
    redis_retry_s: float = Field(
        default=5.0, gt=0, description="How long the cache stays on its in-process fallback before trying Redis again."
    )
    redis_ca_cert: str | None = Field(
        default=None,
        description=(
            "PEM of the CA that signed a `rediss://` server's certificate when no trust store holds it"
            " (Memorystore signs with its own; Terraform sets it); unset: the system's trust store."
        ),
    )
    cache_ttl_page_s: float = Field(default=3600.0, gt=0, description="Lifetime of a cached scraped page.")
    cache_ttl_token_s: float = Field(default=3300.0, gt=0, description="Lifetime of a cached OAuth token.")
    cache_ttl_analysis_s: float = Field(default=30 * 86400.0, gt=0, description="Lifetime of a cached analysis.")
    http_allow_networks: tuple[IPvAnyNetwork, ...] = Field(
        default=(),
        description="Outbound HTTP: networks allowed despite the SSRF policy (JSON list; empty in production).",
    )
    http_timeout_s: float = Field(default=10.0, gt=0, le=300, description="Timeout of one outbound request.")
    http_max_response_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="Larger outbound responses are cut off and refused."
    )
    http_max_redirects: int = Field(
        default=5, ge=0, le=20, description="Redirects followed, each checked by the SSRF policy."
    )
    http_max_retries: int = Field(default=3, ge=0, le=10, description="Retries of a failed outbound request.")
    http_backoff_base_s: float = Field(default=0.5, gt=0, description="First outbound retry delay, doubled per try.")
    http_backoff_cap_s: float = Field(default=30.0, gt=0, description="Longest outbound retry delay.")
    http_retry_after_cap_s: float = Field(
        default=60.0,
        ge=0,
        description="Longest `Retry-After` waited for (the host is held back meanwhile); a longer one fails the request.",
    )
    http_rate_per_host: float = Field(default=2.0, gt=0, description="Requests per second per host (token bucket).")
    http_burst_per_host: int = Field(default=4, ge=1, description="Requests a host may get at once (bucket size).")
    http_user_agent: str = Field(
        default="contentfn/0.1 (+content intelligence)", description="User-Agent of outbound requests."
    )
    scrape_sources: tuple[ScrapeSource, ...] = Field(
        default=(), description="Sources the scrape function pulls from (JSON list of source objects)."
    )
    genius_token: SecretStr | None = Field(default=None, description="Token of the Genius-compatible lyrics API.")
    spotify_api_url: str = Field(default="https://api.spotify.com", description="Spotify-compatible metadata API.")
    spotify_token_url: str = Field(
        default="https://accounts.spotify.com/api/token",
        description="Its client-credentials token endpoint.",
    )
    spotify_client_id: str | None = Field(
        default=None, description="Spotify client id; unset: enrich computes lyric features only."
    )
    spotify_client_secret: SecretStr | None = Field(default=None, description="Spotify client secret.")
    spotify_min_match: float = Field(
        default=0.85, ge=0, le=1, description="Least fuzzy artist/title similarity of an accepted Spotify match."
    )
    llm_base_url: str | None = Field(
        default=None,
        description="Any OpenAI-compatible `/v1/chat/completions` API; unset: rule-based and distilled analyses only.",
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Model the LLM analyzer asks for.")
    llm_api_key: SecretStr | None = Field(default=None, description="API key of the LLM.")
    llm_timeout_s: float = Field(default=30.0, gt=0, le=600, description="Timeout of one LLM call.")
    llm_max_output_tokens: int = Field(default=400, ge=16, le=32_000, description="Output tokens an LLM call may use.")
    llm_price_input_per_mtok: float = Field(
        default=0.15, ge=0, description="USD per million input tokens, for the cost ledger."
    )
    llm_price_output_per_mtok: float = Field(
        default=0.60, ge=0, description="USD per million output tokens, for the cost ledger."
    )
    llm_daily_token_budget: int = Field(
        default=2_000_000,
        ge=0,
        description="LLM tokens a day, reserved before each call; once spent, no LLM call is made until the next day (UTC).",
    )
    llm_breaker_failures: int = Field(default=5, ge=1, description="Failed LLM calls in a row that open the breaker.")
    llm_breaker_reset_s: float = Field(default=30.0, gt=0, description="Open breaker: seconds before one probe call.")
    analysis_prompt_version: str = Field(
        default="v1", min_length=1, max_length=50, description="Prompt version: part of the analysis cache key."
    )
    analysis_min_confidence: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="A result below this confidence escalates to the next analyzer (distilled, then the LLM).",
    )
    distilled_min_labels: int = Field(
        default=150,
        ge=10,
        description="LLM labels of the prompt version needed before the distilled predictor is fitted.",
    )
    distilled_refit_every: int = Field(default=100, ge=1, description="New LLM labels between refits.")
    distilled_max_mae: float = Field(
        default=1.0,
        gt=0,
        description="The distilled predictor answers only while its mean absolute quality error is at most this.",
    )
    analyze_max_text_chars: int = Field(default=20_000, ge=100, description="Longest text an analysis reads.")

    # --- Vision: images, streams and the capped GPU inference service -------------------------
    # The cap (Terraform sets these): instances x batches in flight x batch size images at once.
    gpu_max_instances: int = Field(default=1, ge=0, le=1000, description="GPU instances (the cap; Terraform sets it).")
    gpu_max_batch: int = Field(default=8, ge=1, le=1024, description="Images per model call.")
    gpu_max_in_flight: int = Field(default=2, ge=1, le=64, description="Batches in flight per instance.")
    gpu_max_wait_ms: float = Field(
        default=20.0,
        ge=0,
        le=10_000,
        description=(
            "How long a partial batch waits for more images. A busy GPU keeps its batches full when this is long"
            " enough for a pipeline to fill one."
        ),
    )
    gpu_queue: str | None = Field(
        default=None,
        description="SQS queue URL or Pub/Sub subscription the GPU worker pulls detection jobs from; unset: Postgres.",
    )
    gpu_decode_threads: int = Field(
        default=0, ge=0, le=256, description="Decode threads; 0: one per core (per process: cores / processes)."
    )
    gpu_processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description=(
            "Pipeline processes per GPU instance, splitting its in-flight batches; 0: one per four cores on a GPU"
            " host (at most half the in-flight batches), one on CPU."
        ),
    )
    gpu_concurrent_calls: int = Field(
        default=0,
        ge=0,
        le=64,
        description=(
            "Model calls at once per GPU across its processes, stream batches included (a `flock` gate, freed when"
            " a holder dies); 0: no limit."
        ),
    )
    gpu_infer_threads: int = Field(default=1, ge=1, le=8, description="Model-calling threads per pipeline process.")
    gpu_device_process: bool = Field(
        default=False,
        description=(
            "One process owns the GPU session; the pipeline processes claim, decode, write and ack, and send it"
            " batches through shared memory (`infra/gpu_worker/README.md`)."
        ),
    )
    gpu_device_calls: int = Field(
        default=1, ge=1, le=8, description="Model calls the device process runs at once, each on a session of its own."
    )
    gpu_pinned_buffers: bool = Field(
        default=True, description="On a GPU, page-lock the batch and output buffers (DMA copies to the device)."
    )
    gpu_malloc_keep_mib: int = Field(
        default=512,
        ge=0,
        le=2047,
        description=(
            "Freed memory each process of the GPU service keeps for reuse instead of returning it to the kernel"
            " and faulting it in again per image (glibc malloc thresholds; 0: the C library's defaults; the local"
            " runtime leaves malloc alone)."
        ),
    )
    gpu_item_deadline_s: float = Field(
        default=60.0, gt=0, description="A claimed image not inferred by then goes back to the queue."
    )
    gpu_grace_s: float = Field(
        default=20.0, ge=0, description="On SIGTERM: in-flight work is finished or released within this."
    )
    gpu_outbox_relay_s: float = Field(
        default=5.0,
        gt=0,
        description="On a cloud queue: how often the service relays deferred detection jobs that fell due.",
    )
    gpu_metrics_host: str = Field(
        default="127.0.0.1", description="Where the GPU service's `/healthz` and `/metrics` listen."
    )
    gpu_metrics_port: int = Field(default=9090, ge=0, le=65535, description="Their port.")
    local_gpu_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve the local runtime's CPU detection worker's `/healthz` and `/metrics` on this port "
        "(0: any free port); unset: not served (the local API's `/metrics` has every other figure).",
    )
    gpu_target_latency_s: float = Field(
        default=60.0,
        gt=0,
        description="Admission: producers defer new images when the backlog would take longer than this to drain.",
    )
    gpu_expected_img_per_s: float = Field(
        default=20.0,
        gt=0,
        description="Admission: drain rate per instance until the running workers have measured their own.",
    )
    detector_model_path: Path | None = Field(
        default=None,
        description=(
            "Detector ONNX file (the GPU image sets it to the model baked in at build); unset: the"
            " YOLOv8n-architecture model of the `nudenet` wheel (`demo` extra: tests and the local demo only, AGPL-3.0)."
        ),
    )
    detector_model_name: str | None = Field(
        default=None, description="Model name recorded with detections; unset: the file name without its extension."
    )
    detector_layout: Literal["auto", "yolov5", "yolov8", "yolox"] = Field(
        default="auto", description="Output layout of the detector; `auto`: guessed from its output shape."
    )
    detector_input_size: int | None = Field(
        default=None,
        ge=32,
        le=4096,
        description="Square input size; unset: from the model's input shape or metadata, else 640.",
    )
    detector_channel_order: Literal["rgb", "bgr"] | None = Field(
        default=None, description="Channel order the model expects; unset: `bgr` for YOLOX, `rgb` otherwise."
    )
    detector_scale: float | None = Field(
        default=None, gt=0, description="Factor applied to 0-255 pixels; unset: 1.0 for YOLOX, 1/255 otherwise."
    )
    detector_labels_file: Path | None = Field(default=None, description="One label per line, class 0 first.")
    detector_score_threshold: float = Field(default=0.35, ge=0, le=1, description="Least score of a kept detection.")
    detector_iou_threshold: float = Field(default=0.45, ge=0, le=1, description="IoU of per-class NMS.")
    detector_max_detections: int = Field(default=100, ge=1, le=10_000, description="Most detections per image.")
    detector_precision: Literal["fp32", "fp16"] = Field(
        default="fp32",
        description=(
            "`fp16` converts the detector at load to half-precision weights and arithmetic (tensor cores on a"
            " GPU), its input and output staying float32."
        ),
    )
    detector_providers: tuple[str, ...] = Field(
        default=(), description="ONNX Runtime providers (JSON list); empty: TensorRT, CUDA, CPU, whichever is present."
    )
    detector_threads: int = Field(default=0, ge=0, le=256, description="Detector threads; 0: onnxruntime picks.")
    detector_provider_options: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description=(
            "Options per ONNX Runtime GPU provider, as JSON, laid over contentfn's own, e.g."
            ' `{"CUDAExecutionProvider": {"prefer_nhwc": "1"}}`; an unknown provider is refused at start.'
        ),
    )
    image_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="Larger images are refused.")
    image_url_ttl_s: int = Field(
        default=300,
        ge=30,
        le=86400,
        description="Lifetime of the signed GET URL an image's content answers with where the store signs one (the cloud).",
    )
    image_max_pixels: int = Field(
        default=40_000_000, ge=1024, description="Images with more pixels (read from the header) are refused."
    )
    stream_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="Lease of a stream on a worker, renewed while it runs; a dead worker's streams are taken over after it.",
    )
    stream_max_fps: float = Field(
        default=30.0, gt=0, description="Highest sampling rate (frames per second) a stream may be registered with."
    )
    stream_buffer_frames: int = Field(
        default=8, ge=1, le=1000, description="Behind this many frames, the oldest are dropped."
    )
    stream_backoff_cap_s: float = Field(default=60.0, gt=0, description="Longest reconnect delay of a stream.")
    stream_max_per_worker: int = Field(default=4, ge=0, le=256, description="Streams one worker holds at most.")
    stream_min_fps: float = Field(
        default=0.1, gt=0, description="Lowest sampling rate (frames per second) a stream may be registered with."
    )
    stream_max_pixels: int = Field(
        default=3840 * 2160,
        ge=1024,
        description="Stream frames with more pixels fail the stream, checked before a frame is converted.",
    )
    stream_max_active: int = Field(
        default=64, ge=0, description="Streams that may be active (pending, running, retrying) at once, overall."
    )
    stream_max_per_owner: int = Field(
        default=16, ge=0, description="Streams that may be active at once per API key (a key's own quota overrides it)."
    )
    stream_idle_expiry_s: float = Field(
        default=900.0,
        gt=0,
        description="A stream that yields no frame for this long (source gone, only errors) expires and frees its place.",
    )
    stream_tls_verify: bool = Field(
        default=True,
        description=(
            "Check the certificate of an `rtsps://` source against its host name. Off: any certificate is "
            "accepted (self-signed cameras), the address is still checked and pinned."
        ),
    )
    stream_tls_ca_file: str | None = Field(
        default=None,
        description="CA bundle (PEM) `rtsps://` certificates are checked against, in place of the system's.",
    )
    stream_allow_file_urls: bool = Field(
        default=False,
        description="Allow `file://` sources, which read the worker's disk: local runtime and tests only.",
    )

    @field_validator(
        "redis_url",
        "genius_token",
        "spotify_client_secret",
        "llm_api_key",
        "llm_base_url",
        "embed_api_key",
        mode="before",
    )
    @classmethod
    def _intel_empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("detector_provider_options")
    @classmethod
    def _known_providers(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        unknown = sorted(set(value) - {"CUDAExecutionProvider", "TensorrtExecutionProvider"})
        if unknown:
            raise ValueError(
                f"options for {', '.join(unknown)}: only CUDAExecutionProvider and TensorrtExecutionProvider take them"
            )
        return value

    @field_validator("api_key", "database_url", "database_credentials_secret", "database_rds_instance", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def api_auth(self) -> bool:
        """Whether the API asks every non-public request for a key."""
        return self.api_key is not None or self.require_api_key

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models" / "all-MiniLM-L6-v2"

    @property
    def buckets_dir(self) -> Path:
        """Root of the local blob store: one folder per bucket."""
        return self.data_dir / "buckets"

    @property
    def pg_data_dir(self) -> Path:
        return self.data_dir / "pgdata"

    def for_serving_http(self) -> Self:
        """These settings as a process that only answers API requests uses them.

        ``embed_threads`` 0 becomes 1: a request embeds one short query, and concurrent requests
        sharing one session's thread pool contend for it (measured: 5.2-5.4 ms of API CPU a distinct
        search with one thread, 6.8-7.3 with onnxruntime's choice; see docs/benchmarks.md).
        """
        return self if self.embed_threads else self.model_copy(update={"embed_threads": 1})


def load_settings(**overrides: object) -> Settings:
    """Build and validate settings from the environment (plus explicit overrides).

    Raises ConfigError naming the offending ``CONTENTFN_*`` variable.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "?"
            problems.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    check_settings(settings)
    return settings


def check_settings(settings: Settings) -> None:
    """What no single field can check: combinations of variables."""
    if settings.max_record_bytes is not None and settings.max_record_bytes < settings.max_field_bytes:
        raise ConfigError(f"invalid configuration: {ENV_PREFIX}MAX_RECORD_BYTES is below {ENV_PREFIX}MAX_FIELD_BYTES")
    if settings.db_pool_min > settings.db_pool_max:
        raise ConfigError(f"invalid configuration: {ENV_PREFIX}DB_POOL_MIN exceeds {ENV_PREFIX}DB_POOL_MAX")
    if settings.database_iam_auth and settings.database_url is None:
        raise ConfigError(
            f"invalid configuration: {ENV_PREFIX}DATABASE_IAM_AUTH needs {ENV_PREFIX}DATABASE_URL (the host, database"
            " and IAM login to connect as)"
        )
    if settings.database_iam_auth and (settings.database_credentials_secret or settings.database_rds_instance):
        raise ConfigError(
            f"invalid configuration: {ENV_PREFIX}DATABASE_IAM_AUTH logs in with a token; it does not combine with"
            f" {ENV_PREFIX}DATABASE_CREDENTIALS_SECRET or {ENV_PREFIX}DATABASE_RDS_INSTANCE"
        )
    if settings.database_credentials_secret and settings.database_url is None and not settings.database_rds_instance:
        raise ConfigError(
            f"invalid configuration: {ENV_PREFIX}DATABASE_CREDENTIALS_SECRET needs {ENV_PREFIX}DATABASE_URL"
            f" or {ENV_PREFIX}DATABASE_RDS_INSTANCE (the host and database to log in to; the embedded database takes"
            " no credentials)"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once."""
    return load_settings()
