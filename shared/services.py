"""Wiring: the ports a function needs, built once per process from Settings.

Cloud entry points and the local runtime both build a ``Services`` and hand it to the cores; the
cores never construct adapters themselves, which keeps them testable and cloud-agnostic.
"""

from __future__ import annotations

import logging
import threading
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
    # Jobs of a kind waiting in a cloud queue (after the outbox relay), for admission checks;
    # set by cloud entry points whose CONTENTFN_QUEUES names a queue that reports its depth.
    remote_backlog: Callable[[str], int] | None = None

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

    def close(self) -> None:
        self.db.close()


def _query_cache(settings: Settings) -> Cache:
    """Query vectors are cached in Redis when it is configured, so every function instance behind
    the API shares them (a Redis outage falls back to the process's LRU); else in process."""
    if settings.redis_url is None:
        return MemoryCache(settings.query_cache_entries)
    from shared.cache.redis_cache import build_cache

    return build_cache(settings)
