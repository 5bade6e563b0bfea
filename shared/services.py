"""Wiring: the ports a function needs, built once per process from Settings.

Cloud entry points and the local runtime both build a ``Services`` and hand it to the cores; the
cores never construct adapters themselves, which keeps them testable and cloud-agnostic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.blob import Blob, LocalBlob
from shared.cache import Cache, MemoryCache
from shared.config import Settings
from shared.queue.base import Outbox
from shared.queue.postgres import PgQueue
from shared.store import Database

if TYPE_CHECKING:
    from shared.embedder.base import Embedder
    from shared.store.registry import EmbeddingModel

__all__ = ["Services"]

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    # The Queue port the cores use (Postgres jobs table in every runtime: the transactional outbox).
    queue: Outbox
    blob: Blob
    cache: Cache
    _embedder: Embedder | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _model_embedders: dict[str, Embedder] = field(default_factory=dict)
    # Jobs of a kind waiting in a cloud queue (after the outbox relay), for admission checks;
    # set by cloud entry points whose CONTENTFN_QUEUES names a queue that reports its depth.
    remote_backlog: Callable[[str], int] | None = None
    # The registry's active model as last read, and until when (monotonic) it is reused.
    _search_model: tuple[float, EmbeddingModel | None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True, blob: Blob | None = None) -> Services:
        db = Database.from_settings(settings)
        if migrate:
            applied = db.migrate()
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        db.open()
        queue = PgQueue(
            db,
            visibility_s=settings.queue_visibility_s,
            max_attempts=settings.queue_max_attempts,
            backoff_base_s=settings.queue_backoff_base_s,
            backoff_cap_s=settings.queue_backoff_cap_s,
        )
        return cls(
            settings=settings,
            db=db,
            queue=queue,
            blob=blob or LocalBlob(settings.buckets_dir),
            cache=_query_cache(settings),
        )

    @property
    def shared_cache(self) -> bool:
        """Whether ``cache`` is Redis (shared by every instance) rather than this process's LRU."""
        from shared.cache.redis_cache import RedisCache

        return isinstance(self.cache, RedisCache)

    @property
    def has_embedder(self) -> bool:
        return self._embedder is not None

    @property
    def embedder(self) -> Embedder:
        """Loaded on first use: functions that never embed never pay for the model."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from shared.embedder import load_embedder

                    self._embedder = load_embedder(self.settings)
        return self._embedder

    def embedder_for(self, model: EmbeddingModel) -> Embedder:
        """The embedder of a registered model, loaded once per process; the configured embedder
        serves the model it is (no second copy of the same ONNX session)."""
        if model.provider == "onnx" and model.options.get("variant", "fp32") == self.settings.embed_variant:
            configured = self.embedder
            if configured.model_key == model.key:
                return configured
        with self._lock:
            found = self._model_embedders.get(model.key)
            if found is None:
                from shared.embedder.providers import embedder_for

                found = self._model_embedders[model.key] = embedder_for(model, self.settings)
        return found

    def search_embedder(self) -> Embedder:
        """The embedder of the model search reads: the registry's active model (reused for
        ``search_model_cache_s``, see :meth:`active_search_model`); the configured embedder before
        any model is registered."""
        model = self.active_search_model()
        return self.embedder if model is None else self.embedder_for(model)

    def search_model_key(self) -> str:
        """The key of the model search reads, without loading its embedder when it is registered."""
        model = self.active_search_model()
        return self.embedder.model_key if model is None else model.key

    def active_search_model(self) -> EmbeddingModel | None:
        """The registry's active model, read at most once per ``search_model_cache_s``: a switch
        committed elsewhere reaches search within that bound, one made through
        :meth:`forget_search_model` (the API's activate and rollback) at once."""
        from shared.store.registry import active_model

        ttl = self.settings.search_model_cache_s
        cached = self._search_model
        now = time.monotonic()
        if ttl > 0 and cached is not None and cached[0] > now:
            return cached[1]
        with self.db.connection() as conn:
            model = active_model(conn)
            conn.commit()
        if ttl > 0:
            self._search_model = (now + ttl, model)
        return model

    def forget_search_model(self) -> None:
        """Read the active model again on the next search (after this process switched it)."""
        self._search_model = None

    def write_models(self) -> list[EmbeddingModel] | None:
        """Every model new and changed tracks are embedded with (active first, then shadows), or
        None before any model is registered (the configured embedder alone)."""
        from shared.store.registry import ModelState, list_models

        with self.db.connection() as conn:
            models = list_models(conn)
            conn.commit()
        if not models:
            return None
        live = [m for m in models if m.state is not ModelState.RETIRED]
        return sorted(live, key=lambda m: m.state is not ModelState.ACTIVE)

    def close(self) -> None:
        self.db.close()


def _query_cache(settings: Settings) -> Cache:
    """Query vectors are cached in Redis when it is configured, so every function instance behind
    the API shares them (a Redis outage falls back to the process's LRU); else in process."""
    if settings.redis_url is None:
        return MemoryCache(settings.query_cache_entries)
    from shared.cache.redis_cache import build_cache

    return build_cache(settings)
