"""Process configuration: one ``Settings`` object, env prefix ``CONTENTFN_``.

Invalid configuration fails at start with one :class:`~shared.errors.ConfigError` that names the
environment variable, so a typo never surfaces later as a confusing runtime failure.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError
from shared.intel.sources import ScrapeSource

__all__ = ["Settings", "get_settings", "load_settings"]

ENV_PREFIX = "CONTENTFN_"


class Settings(BaseSettings):
    """Every knob of every process. Field ``foo_bar`` is read from ``CONTENTFN_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Where local state lives: embedded database, local buckets, models.
    data_dir: Path = Field(default=Path(".contentfn"))
    # External PostgreSQL with pgvector; unset means the embedded server under data_dir.
    database_url: SecretStr | None = None
    db_pool_min: int = Field(default=1, ge=1, le=64)
    db_pool_max: int = Field(default=8, ge=1, le=256)
    db_statement_timeout_ms: int = Field(default=30_000, ge=100)
    # AWS Secrets Manager secret holding {"username", "password"}: read at connect time, so a
    # rotated password reaches running processes and CONTENTFN_DATABASE_URL carries none.
    database_credentials_secret: str | None = None
    # An RDS instance (ARN or identifier) whose managed master secret (which RDS rotates every 7 days)
    # the processes log in with; its endpoint is the database unless CONTENTFN_DATABASE_URL is set.
    database_rds_instance: str | None = None
    # Emulator endpoints for AWS APIs (moto server); unset in the cloud.
    aws_endpoint_url: str | None = None
    aws_region: str | None = None

    # Model files produced by `make model`; unset means <data_dir>/models/all-MiniLM-L6-v2.
    model_dir: Path | None = None
    embed_variant: Literal["fp32", "int8"] = "fp32"
    embed_batch_size: int = Field(default=32, ge=1, le=1024)
    embed_threads: int = Field(default=0, ge=0, le=256)  # 0: onnxruntime picks
    # Measured by `make bench-search` (57,718 clustered tracks, m=16, 2 cores): with ef_construction=64,
    # recall@10 against an exact scan is 0.85 at ef_search=64 and needs ef_search=800 for 0.96; with
    # ef_construction=200 (index build 18 s instead of 9 s) it is 0.946 at 100, 0.976 at 200 and 0.981
    # at 300, with the SQL p95 under 5 ms.
    hnsw_ef_search: int = Field(default=200, ge=10, le=1000)
    hnsw_m: int = Field(default=16, ge=4, le=100)
    hnsw_ef_construction: int = Field(default=200, ge=16, le=1000)
    # While a model has no HNSW index yet and at least this many embed jobs wait, the index is not
    # built: a bulk load embeds first (search uses an exact scan meanwhile) and the index is built once,
    # concurrently, when the backlog falls below this. Incremental HNSW inserts during a 57,718-track
    # load cost the pipeline a quarter of its speed on 2 cores. 0: build the index as soon as possible.
    hnsw_defer_backlog: int = Field(default=2_000, ge=0)
    hnsw_build_mem_mb: int = Field(default=512, ge=16, le=65_536)  # maintenance_work_mem for the build

    # Uploads.
    bucket: str = Field(default="uploads", min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]+$")
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    max_field_bytes: int = Field(default=1024 * 1024, ge=1024)
    ingest_batch_rows: int = Field(default=5_000, ge=1)
    bad_rows_reported: int = Field(default=100, ge=0)

    # Queue and retries.
    queue_visibility_s: float = Field(default=120.0, gt=0)
    queue_max_attempts: int = Field(default=5, ge=1, le=100)
    queue_backoff_base_s: float = Field(default=2.0, gt=0)
    queue_backoff_cap_s: float = Field(default=300.0, gt=0)
    idempotency_ttl_s: float = Field(default=900.0, gt=0)
    worker_poll_s: float = Field(default=0.2, gt=0)

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

    # HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_key: SecretStr | None = None
    search_max_k: int = Field(default=100, ge=1, le=1000)
    search_max_query_chars: int = Field(default=1000, ge=1)
    query_cache_entries: int = Field(default=2048, ge=0)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- Content intelligence: cache, outbound HTTP, scrape, enrich, analyze ------------------
    # Redis for the shared cache, rate limits and breaker state; unset (or down) means in-process.
    redis_url: SecretStr | None = None
    redis_timeout_s: float = Field(default=0.25, gt=0, le=30)
    redis_retry_s: float = Field(default=5.0, gt=0)  # how long to stay on the fallback before re-trying
    # PEM of the CA that signed the Redis server's TLS certificate, for a rediss:// URL whose server
    # is not signed by a public CA (Memorystore signs with its own; Terraform sets it); unset: the
    # system's trust store.
    redis_ca_cert: str | None = None
    cache_ttl_page_s: float = Field(default=3600.0, gt=0)
    cache_ttl_token_s: float = Field(default=3300.0, gt=0)
    cache_ttl_analysis_s: float = Field(default=30 * 86400.0, gt=0)
    # Outbound HTTP: networks allowed despite the SSRF policy (empty in production; tests allow loopback).
    http_allow_networks: tuple[IPvAnyNetwork, ...] = ()
    http_timeout_s: float = Field(default=10.0, gt=0, le=300)
    http_max_response_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    http_max_redirects: int = Field(default=5, ge=0, le=20)
    http_max_retries: int = Field(default=3, ge=0, le=10)
    http_backoff_base_s: float = Field(default=0.5, gt=0)
    http_backoff_cap_s: float = Field(default=30.0, gt=0)
    http_retry_after_cap_s: float = Field(default=60.0, ge=0)
    http_rate_per_host: float = Field(default=2.0, gt=0)  # requests per second, token bucket
    http_burst_per_host: int = Field(default=4, ge=1)
    http_user_agent: str = "contentfn/0.1 (+content intelligence)"
    scrape_sources: tuple[ScrapeSource, ...] = ()
    genius_token: SecretStr | None = None
    spotify_api_url: str = "https://api.spotify.com"
    spotify_token_url: str = "https://accounts.spotify.com/api/token"  # noqa: S105 - a URL, not a secret
    spotify_client_id: str | None = None
    spotify_client_secret: SecretStr | None = None
    spotify_min_match: float = Field(default=0.85, ge=0, le=1)
    # LLM (any OpenAI-compatible /v1/chat/completions); no base URL means rule-based only.
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=30.0, gt=0, le=600)
    llm_max_output_tokens: int = Field(default=400, ge=16, le=32_000)
    llm_price_input_per_mtok: float = Field(default=0.15, ge=0)
    llm_price_output_per_mtok: float = Field(default=0.60, ge=0)
    llm_daily_token_budget: int = Field(default=2_000_000, ge=0)
    llm_breaker_failures: int = Field(default=5, ge=1)
    llm_breaker_reset_s: float = Field(default=30.0, gt=0)
    analysis_prompt_version: str = Field(default="v1", min_length=1, max_length=50)
    analysis_min_confidence: float = Field(default=0.6, ge=0, le=1)
    distilled_min_labels: int = Field(default=150, ge=10)
    distilled_refit_every: int = Field(default=100, ge=1)
    distilled_max_mae: float = Field(default=1.0, gt=0)
    analyze_max_text_chars: int = Field(default=20_000, ge=100)

    # --- Vision: images, streams and the capped GPU inference service -------------------------
    # The cap (Terraform sets these): instances x batches in flight x batch size images at once.
    gpu_max_instances: int = Field(default=1, ge=0, le=1000)
    gpu_max_batch: int = Field(default=8, ge=1, le=1024)
    gpu_max_in_flight: int = Field(default=2, ge=1, le=64)  # batches in flight per instance
    gpu_max_wait_ms: float = Field(default=20.0, ge=0, le=10_000)
    gpu_queue: str | None = None  # cloud subscription/queue name; the local queue needs none
    gpu_decode_threads: int = Field(default=0, ge=0, le=256)  # 0: one per core (per process: cores / processes)
    # Pipeline processes per GPU instance, each with its own model session; they split the in-flight
    # batches. 0: one per four cores when a GPU provider is present, else one.
    gpu_processes: int = Field(default=0, ge=0, le=64)
    gpu_concurrent_calls: int = Field(default=0, ge=0, le=64)  # model calls at once per GPU (0: no limit)
    gpu_infer_threads: int = Field(default=1, ge=1, le=8)  # model-calling threads per pipeline process
    gpu_device_process: bool = False  # one process owns the GPU; pipelines send it batches (shared memory)
    gpu_device_calls: int = Field(default=1, ge=1, le=8)  # model calls the device process runs at once
    gpu_pinned_buffers: bool = True  # on a GPU, page-lock the batch buffers (DMA copies to the device)
    # Freed memory each pipeline process keeps for reuse instead of returning it to the kernel and
    # faulting it in again per image (glibc malloc thresholds; 0: the C library's defaults).
    gpu_malloc_keep_mib: int = Field(default=512, ge=0, le=2047)
    gpu_item_deadline_s: float = Field(default=60.0, gt=0)  # a claimed image not inferred by then goes back
    gpu_grace_s: float = Field(default=20.0, ge=0)  # SIGTERM: finish or release in-flight work within this
    # On a cloud queue: how often the service relays deferred detection jobs that fell due (outbox.py).
    gpu_outbox_relay_s: float = Field(default=5.0, gt=0)
    gpu_metrics_host: str = "127.0.0.1"
    gpu_metrics_port: int = Field(default=9090, ge=0, le=65535)
    # Admission: producers defer new images when the backlog would take longer than this to drain
    # at the expected rate of the capped fleet.
    gpu_target_latency_s: float = Field(default=60.0, gt=0)
    # Per instance, until the running workers have measured their own drain rate (gpu_workers).
    gpu_expected_img_per_s: float = Field(default=20.0, gt=0)
    # The detector: unset path means the YOLOv8n-architecture model shipped in the `nudenet` wheel.
    detector_model_path: Path | None = None
    detector_model_name: str | None = None
    detector_layout: Literal["auto", "yolov5", "yolov8", "yolox"] = "auto"
    detector_input_size: int | None = Field(default=None, ge=32, le=4096)
    detector_channel_order: Literal["rgb", "bgr"] | None = None
    detector_scale: float | None = Field(default=None, gt=0)
    detector_labels_file: Path | None = None  # one label per line, class 0 first
    detector_score_threshold: float = Field(default=0.35, ge=0, le=1)
    detector_iou_threshold: float = Field(default=0.45, ge=0, le=1)
    detector_max_detections: int = Field(default=100, ge=1, le=10_000)
    detector_precision: Literal["fp32", "fp16"] = "fp32"  # fp16: half-precision weights and arithmetic
    detector_providers: tuple[str, ...] = ()  # empty: TensorRT, CUDA, CPU, whichever is present
    detector_threads: int = Field(default=0, ge=0, le=256)
    # Options per ONNX Runtime provider, over contentfn's own (JSON), e.g.
    # {"CUDAExecutionProvider": {"do_copy_in_default_stream": "0", "prefer_nhwc": "1"}}
    detector_provider_options: dict[str, dict[str, str]] = Field(default_factory=dict)
    image_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    image_max_pixels: int = Field(default=40_000_000, ge=1024)
    stream_lease_s: float = Field(default=30.0, gt=0)
    stream_max_fps: float = Field(default=30.0, gt=0)
    stream_buffer_frames: int = Field(default=8, ge=1, le=1000)  # behind this many frames, the oldest go
    stream_backoff_cap_s: float = Field(default=60.0, gt=0)
    stream_max_per_worker: int = Field(default=4, ge=0, le=256)
    stream_allow_file_urls: bool = False  # file:// sources read the worker's disk: local runtime and tests only

    @field_validator("redis_url", "genius_token", "spotify_client_secret", "llm_api_key", "llm_base_url", mode="before")
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
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models" / "all-MiniLM-L6-v2"

    @property
    def buckets_dir(self) -> Path:
        """Root of the local blob store: one folder per bucket."""
        return self.data_dir / "buckets"

    @property
    def pg_data_dir(self) -> Path:
        return self.data_dir / "pgdata"


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
    if settings.db_pool_min > settings.db_pool_max:
        raise ConfigError(f"invalid configuration: {ENV_PREFIX}DB_POOL_MIN exceeds {ENV_PREFIX}DB_POOL_MAX")
    if settings.database_credentials_secret and settings.database_rds_instance:
        raise ConfigError(
            f"invalid configuration: {ENV_PREFIX}DATABASE_CREDENTIALS_SECRET and {ENV_PREFIX}DATABASE_RDS_INSTANCE"
            " both name credentials; set one"
        )
    if settings.database_credentials_secret and settings.database_url is None:
        raise ConfigError(
            f"invalid configuration: {ENV_PREFIX}DATABASE_CREDENTIALS_SECRET needs {ENV_PREFIX}DATABASE_URL"
            " (the host and database to log in to; the embedded database takes no credentials)"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once."""
    return load_settings()
