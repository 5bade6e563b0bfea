"""Process configuration: one ``Settings`` object, env prefix ``CONTENTFN_``.

Invalid configuration fails at start with one :class:`~shared.errors.ConfigError` that names the
environment variable, so a typo never surfaces later as a confusing runtime failure.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError

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

    # Model files produced by `make model`; unset means <data_dir>/models/all-MiniLM-L6-v2.
    model_dir: Path | None = None
    embed_variant: Literal["fp32", "int8"] = "fp32"
    embed_batch_size: int = Field(default=32, ge=1, le=1024)
    embed_threads: int = Field(default=0, ge=0, le=256)  # 0: onnxruntime picks
    hnsw_ef_search: int = Field(default=64, ge=10, le=1000)
    hnsw_m: int = Field(default=16, ge=4, le=100)
    hnsw_ef_construction: int = Field(default=64, ge=16, le=1000)

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

    # HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_key: SecretStr | None = None
    search_max_k: int = Field(default=100, ge=1, le=1000)
    search_max_query_chars: int = Field(default=1000, ge=1)
    query_cache_entries: int = Field(default=2048, ge=0)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("api_key", "database_url", mode="before")
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
    if settings.db_pool_min > settings.db_pool_max:
        raise ConfigError(f"invalid configuration: {ENV_PREFIX}DB_POOL_MIN exceeds {ENV_PREFIX}DB_POOL_MAX")
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated once."""
    return load_settings()
