"""embed: claim ``embed`` jobs in batches, embed the tracks, write vectors and ack — in one transaction.

Vectors, ledger rows and the job deletions commit together, so a worker killed mid-batch loses
nothing (its jobs reappear when their lease runs out) and a job that is redelivered finds its
vector already written for the same content hash and does no work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import ModelNotReady
from shared.metrics import EMBED_SECONDS, EMBED_TEXTS, JOB_SECONDS
from shared.metrics.jobs import record_jobs
from shared.observability import job_span
from shared.queue.base import ClaimedJob, JobAcks
from shared.queue.kinds import EMBED_JOB, EmbedPayload, MalformedPayload
from shared.services import Services
from shared.store import ledger
from shared.store.registry import ModelState
from shared.store.tracks import TrackStore

if TYPE_CHECKING:
    import numpy as np

    from shared.embedder.base import Embedder

__all__ = ["EMBED_JOB", "STAGE", "EmbedOutcome", "embed_claimed", "ensure_index", "run_embed_batch"]

log = logging.getLogger(__name__)

STAGE = "embedded"


@dataclass(frozen=True)
class EmbedOutcome:
    claimed: int = 0
    embedded: int = 0
    skipped: int = 0
    failed: int = 0


def ensure_index(services: Services) -> None:
    """Build the model's HNSW index now if it is missing, whatever the backlog (tests, admin tools)."""
    from functions.embed.index import IndexKeeper

    IndexKeeper(services).build_now()


def run_embed_batch(services: Services, limit: int | None = None) -> EmbedOutcome:
    """Claim up to ``limit`` jobs and process them; returns what happened (0 claimed: queue empty)."""
    claimed = services.queue.claim(EMBED_JOB, limit or services.settings.embed_batch_size)
    if not claimed:
        return EmbedOutcome()
    return embed_claimed(claimed, services)


def embed_claimed(claimed: Sequence[ClaimedJob], services: Services, *, acks: JobAcks | None = None) -> EmbedOutcome:
    """Embed a batch in one model call and one transaction; ``acks`` owns the jobs (default: the
    outbox, acked in the transaction that writes the vectors; for pushed jobs, their delivery)."""
    queue: JobAcks = acks if acks is not None else services.queue
    work: list[ClaimedJob] = []
    ids: set[int] = set()
    for c in claimed:
        try:
            ids.add(EmbedPayload.from_job(c.job).track_id)
        except MalformedPayload as exc:
            queue.fail(c, str(exc), retryable=False)
            continue
        work.append(c)
    poison = len(claimed) - len(work)
    record_jobs(EMBED_JOB, "dead", poison)
    if not work:
        return EmbedOutcome(claimed=len(claimed), failed=poison)
    started = time.perf_counter()
    try:
        with job_span("embed batch", [c.job for c in work], attributes={"batch.jobs": len(work)}):
            embedded, skipped = _embed_and_commit(work, sorted(ids), services, queue)
    except Exception as exc:  # every job of the batch retries with backoff, then dead-letters
        log.exception("embed batch of %d failed", len(work))
        outcomes = [queue.fail(c, f"{type(exc).__name__}: {exc}", retryable=True) for c in work]
        record_jobs(EMBED_JOB, "dead", outcomes.count("dead"))
        record_jobs(EMBED_JOB, "retried", len(outcomes) - outcomes.count("dead"))
        return EmbedOutcome(claimed=len(claimed), failed=len(claimed))
    record_jobs(EMBED_JOB, "done", len(work))
    JOB_SECONDS.labels(EMBED_JOB).observe(time.perf_counter() - started)
    return EmbedOutcome(claimed=len(claimed), embedded=embedded, skipped=skipped, failed=poison)


def _embed_and_commit(
    work: Sequence[ClaimedJob], ids: list[int], services: Services, queue: JobAcks
) -> tuple[int, int]:
    targets = _write_targets(services)
    started = time.perf_counter()
    with services.db.connection() as conn:
        store = TrackStore(conn)
        texts = store.texts_for(ids)  # deleted tracks simply drop out
        todo: dict[str, list[int]] = {}
        for key, _, _ in targets:
            done = store.embedded_hashes(list(texts), key)
            todo[key] = [tid for tid, (chash, _) in texts.items() if done.get(tid) != chash]
        conn.commit()
    vectors: dict[str, np.ndarray] = {}
    lagging: list[str] = []
    for key, embedder, required in targets:
        if not todo[key]:
            continue
        try:
            if embedder is None:
                raise ModelNotReady(f"the embedder of {key} could not be loaded")
            model_started = time.perf_counter()
            vectors[key] = embedder.embed([texts[tid][1] for tid in todo[key]])
            EMBED_SECONDS.labels(key).inc(time.perf_counter() - model_started)
        except Exception as exc:
            if required:
                raise
            # A shadow model's provider failing must not hold back new uploads for the model search
            # reads: its backfill pass is reopened and fills these tracks in later.
            log.warning("shadow model %s could not embed this batch (%s); backfill will", key, type(exc).__name__)
            lagging.append(key)
    with services.db.connection() as conn:
        store = TrackStore(conn)
        for key, vecs in vectors.items():
            store.write_embeddings(key, todo[key], [texts[tid][0] for tid in todo[key]], vecs)
        if lagging:
            conn.execute(
                "UPDATE embedding_models SET backfill_done = false,"
                " backfill_until = greatest(backfill_until, %s) WHERE key = ANY(%s)",
                (max(texts), lagging),
            )
        store.index_text(list(texts))
        elapsed_ms = (time.perf_counter() - started) * 1000
        ledger.record_many(conn, [f"track:{tid}" for tid in texts], STAGE, "ok", elapsed_ms / max(1, len(texts)))
        acked = queue.ack(work, conn=conn)
        conn.commit()
    for key in vectors:
        EMBED_TEXTS.labels(key).inc(len(todo[key]))
    if acked < len(work):
        log.warning("%d of %d embed jobs had lost their lease; their vectors are kept", len(work) - acked, len(work))
    embedded = len({tid for key in vectors for tid in todo[key]})
    return embedded, len(ids) - embedded


def _write_targets(services: Services) -> list[tuple[str, Embedder | None, bool]]:
    """(model key, embedder, required) for every model a new or changed track is embedded with:
    the active model (required: its failure retries the batch) and each shadow model (best effort;
    None when its embedder cannot be loaded). Before any model is registered, the configured
    embedder alone."""
    models = services.write_models()
    if models is None:
        embedder = services.embedder
        return [(embedder.model_key, embedder, True)]
    targets: list[tuple[str, Embedder | None, bool]] = []
    for m in models:
        required = m.state is ModelState.ACTIVE
        try:
            targets.append((m.key, services.embedder_for(m), required))
        except Exception:
            if required:
                raise
            log.warning("the embedder of shadow model %s could not be loaded", m.key, exc_info=True)
            targets.append((m.key, None, False))
    return targets
