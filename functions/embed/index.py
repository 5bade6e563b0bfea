"""When a model's HNSW index gets built: after a bulk backlog, not under it.

Inserting into an HNSW graph costs about as much CPU per vector as a fair share of the embedding
itself (ef_construction=200 is what the recall target needs), so a first bulk load that writes
through the index runs well below the embedding kernel. The classic bulk-load recipe applies: load
first, build the index once. The rule, checked by :meth:`IndexKeeper.tick`:

* the index exists and is valid → nothing to do (remembered for the life of the process);
* a concurrent build that died left an *invalid* index → it is dropped, then the rules below apply;
* at least ``hnsw_defer_backlog`` embed jobs wait → deferred (search does an exact scan meanwhile:
  slower, never less accurate). Waiting means in the Postgres outbox, plus, where the caller can
  tell, in the cloud queue that delivers embed jobs (``backlog_elsewhere``: the SQS queue a Lambda
  batch came from);
* otherwise, once the model has vectors (or at once when ``hnsw_defer_backlog`` is 0), the index is
  built with ``CREATE INDEX CONCURRENTLY`` on a connection of its own, so vector writes and searches
  carry on during the build. A session advisory lock makes one process build while others skip.

A valid index is never dropped: later uploads go through it incrementally, as they must on a live
catalogue.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql

from shared.queue.kinds import EMBED_JOB
from shared.services import Services
from shared.store.roles import take_index_owner
from shared.store.tracks import TrackStore, hnsw_index_name, hnsw_index_sql

__all__ = ["IndexKeeper", "IndexState", "build_index"]

log = logging.getLogger(__name__)


class IndexState(StrEnum):
    READY = "ready"  # a valid HNSW index serves search
    DEFERRED = "deferred"  # a bulk backlog is being embedded first
    PENDING = "pending"  # no vectors yet: nothing to index
    BUILDING = "building"  # another process holds the build lock


class IndexKeeper:
    """Builds one model's HNSW index at the right moment; safe to call from any thread, often."""

    def __init__(self, services: Services, backlog_elsewhere: Callable[[], int] | None = None) -> None:
        self.services = services
        self.backlog_elsewhere = backlog_elsewhere
        self._ready = False
        self._lock = threading.Lock()
        self._building: psycopg.Connection[Any] | None = None

    @property
    def ready(self) -> bool:
        return self._ready

    def tick(self) -> IndexState:
        """Check the rule above and build if it says so (the build blocks this caller only)."""
        if self._ready:
            return IndexState.READY
        with self._lock:
            if self._ready:
                return IndexState.READY
            state = self._tick()
            self._ready = state is IndexState.READY
            return state

    def build_now(self) -> IndexState:
        """Build (or confirm) the index regardless of the backlog."""
        with self._lock:
            state = self._build()
            self._ready = state is IndexState.READY
            return state

    def cancel(self) -> None:
        """Cancel a build in progress (from another thread), e.g. when the process stops."""
        conn = self._building
        if conn is not None and not conn.closed:
            conn.cancel_safe()

    def _tick(self) -> IndexState:
        settings = self.services.settings
        model_key = self.services.embedder.model_key
        with self.services.db.connection() as conn:
            store = TrackStore(conn)
            present = store.hnsw_index_state(model_key)
            has_vectors = store.has_vectors(model_key)
            conn.commit()
        if present == "valid":
            return IndexState.READY
        threshold = settings.hnsw_defer_backlog
        if threshold > 0:
            if self._backlog(threshold) >= threshold:
                return IndexState.DEFERRED
            if not has_vectors:
                return IndexState.PENDING
        return self._build()

    def _backlog(self, threshold: int) -> int:
        waiting = self.services.queue.backlog(EMBED_JOB, threshold)
        if waiting < threshold and self.backlog_elsewhere is not None:
            try:
                waiting += max(0, self.backlog_elsewhere())
            except Exception as exc:  # unknown: decide on the outbox alone
                log.warning("could not read the embed queue's backlog: %s", type(exc).__name__)
        return waiting

    def _build(self) -> IndexState:
        embedder = self.services.embedder

        def started(conn: psycopg.Connection[Any] | None) -> None:
            self._building = conn

        return build_index(self.services, embedder.model_key, embedder.dims, on_start=started)


def build_index(
    services: Services,
    model_key: str,
    dims: int,
    *,
    on_start: Callable[[psycopg.Connection[Any] | None], None] | None = None,
) -> IndexState:
    """Build (or confirm) one model's HNSW index concurrently; any process may call it, one builds.

    ``on_start`` is told the building connection (then None when done), so a caller can cancel it.
    """
    settings = services.settings
    name = hnsw_index_name(model_key)
    lock_key = zlib.crc32(f"contentfn:hnsw:{name}".encode())
    # CREATE INDEX CONCURRENTLY cannot run in a transaction block, and the build outlives the
    # pool's statement timeout: a connection of its own, in autocommit, without that timeout.
    with services.db.connect(autocommit=True) as conn:
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key,)).fetchone()
        if not (locked and locked[0]):
            return IndexState.BUILDING
        try:
            # Index DDL is the table owner's: a runtime role takes that role for this connection.
            take_index_owner(conn)
            store = TrackStore(conn)
            present = store.hnsw_index_state(model_key)
            if present == "valid":
                return IndexState.READY
            if present == "invalid":
                log.warning("dropping the invalid HNSW index %s left by an interrupted build", name)
                conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute("SET statement_timeout = 0")
            conn.execute(
                sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(f"{settings.hnsw_build_mem_mb}MB"))
            )
            log.info(
                "building the HNSW index for %s (m=%d, ef_construction=%d)",
                model_key,
                settings.hnsw_m,
                settings.hnsw_ef_construction,
            )
            if on_start is not None:
                on_start(conn)
            try:
                conn.execute(
                    hnsw_index_sql(
                        model_key,
                        dims=dims,
                        m=settings.hnsw_m,
                        ef_construction=settings.hnsw_ef_construction,
                        concurrently=True,
                    )
                )
            finally:
                if on_start is not None:
                    on_start(None)
            log.info("HNSW index for %s is ready", model_key)
            return IndexState.READY
        finally:
            if not conn.broken:  # a broken connection has released its session lock already
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))
