"""Shadow re-embedding: a model added to the registry is backfilled over the whole catalogue.

Postgres is the queue (as in pgai's vectorizer): one step claims a shadow model's row with
``FOR UPDATE SKIP LOCKED``, embeds the next ``embed_backfill_batch`` tracks after the model's
cursor that lack a current vector of it (tracks that existed when the model was added: later
ones are embedded with every model by the embed function), writes the vectors and moves the cursor in that same
transaction. A worker killed mid-step loses the step (the row lock goes with its connection) and
the next step redoes it; nothing is written twice (one row per track and model). When a pass
finds nothing after the cursor it wraps to the start once, so tracks changed behind the cursor
(or missed while a shadow provider was down) are caught up; a pass from the start that finds
nothing marks the model done and builds its HNSW index concurrently.

Throttling (:class:`BackfillThrottle`): while new uploads wait in the embed queue, a worker gives
backfill only ``embed_backfill_share`` of its batches, so uploads stay first; with nothing
waiting, backfill takes every turn.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import psycopg

from functions.embed.index import build_index
from shared.queue.kinds import EMBED_JOB
from shared.services import Services
from shared.store.registry import EmbeddingModel, get_model
from shared.store.tracks import TrackStore, embedding_text

__all__ = [
    "BackfillStep",
    "BackfillThrottle",
    "backfill_step",
    "uploads_waiting",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackfillStep:
    model: str
    embedded: int
    cursor: int
    done: bool
    index: str | None = None  # the IndexState value of the build when this step finished the model


class BackfillThrottle:
    """Lets a backfill step run after every ``ceil(1/share)``-th embed batch while uploads wait."""

    def __init__(self, share: float) -> None:
        self.every = max(1, math.ceil(1 / share))
        self._batches = 0

    def allow(self, uploads_waiting: bool) -> bool:
        if not uploads_waiting:
            self._batches = 0
            return True
        self._batches += 1
        if self._batches >= self.every:
            self._batches = 0
            return True
        return False


def backfill_step(services: Services, limit: int | None = None) -> BackfillStep | None:
    """One step of one shadow model's backfill; None when no model needs one (or all are claimed)."""
    limit = limit or services.settings.embed_backfill_batch
    with services.db.connection() as conn:
        row = conn.execute(
            "SELECT key FROM embedding_models WHERE state = 'shadow' AND NOT backfill_done"
            " ORDER BY created_at, key LIMIT 1 FOR UPDATE SKIP LOCKED"
        ).fetchone()
        if row is None:
            conn.commit()
            return None
        model = get_model(conn, row[0])
        step = _step(conn, services, model, limit)
        conn.commit()
    if step.done:
        try:
            state = build_index(services, model.key, model.dimensions)
        except Exception as exc:  # the model stays unactivatable until an index build succeeds
            log.warning("HNSW index build for %s failed: %s", model.key, type(exc).__name__)
            state = None
            _reopen(services, model.key)
        return BackfillStep(step.model, step.embedded, step.cursor, step.done, None if state is None else state.value)
    return step


def _step(conn: psycopg.Connection[Any], services: Services, model: EmbeddingModel, limit: int) -> BackfillStep:
    rows = conn.execute(
        "SELECT t.id, t.content_hash, t.title, t.lyrics FROM tracks t"
        " LEFT JOIN embeddings e ON e.track_id = t.id AND e.model = %s"
        " WHERE t.id > %s AND t.id <= %s AND (e.track_id IS NULL OR e.content_hash <> t.content_hash)"
        " ORDER BY t.id LIMIT %s",
        (model.key, model.backfill_after, model.backfill_until, limit),
    ).fetchall()
    if not rows:
        done = model.backfill_after == 0  # a whole pass from the start found nothing left
        conn.execute(
            "UPDATE embedding_models SET backfill_after = 0, backfill_done = %s WHERE key = %s", (done, model.key)
        )
        return BackfillStep(model.key, 0, 0, done)
    embedder = services.embedder_for(model)
    vectors = embedder.embed([embedding_text(r[2], r[3]) for r in rows])
    ids = [int(r[0]) for r in rows]
    TrackStore(conn).write_embeddings(model.key, ids, [r[1] for r in rows], vectors)
    cursor = ids[-1]
    conn.execute("UPDATE embedding_models SET backfill_after = %s WHERE key = %s", (cursor, model.key))
    return BackfillStep(model.key, len(ids), cursor, False)


def _reopen(services: Services, key: str) -> None:
    with services.db.connection() as conn:
        conn.execute("UPDATE embedding_models SET backfill_done = false WHERE key = %s", (key,))
        conn.commit()


def uploads_waiting(services: Services) -> bool:
    """Whether embed jobs (new or changed tracks) wait in the outbox."""
    return services.queue.backlog(EMBED_JOB, 1) > 0
