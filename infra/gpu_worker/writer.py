"""The GPU worker's last stage: a batch's results written, its jobs acked, in one transaction.

Each image's detections are replaced, the image is marked and its ledger row recorded; on the
Postgres queue the jobs are acked in that same transaction, on a cloud queue (SQS, Pub/Sub) right
after it commits. A crash before the commit leaves every job leased and nothing written: the lease
expires and the job runs again. A crash between the commit and a cloud ack redelivers the job, and
the rewrite replaces the same rows: nothing is lost, nothing is duplicated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from infra.gpu_worker.metrics import WorkerMetrics
from shared.queue.base import ClaimedJob, JobSource
from shared.queue.kinds import DetectPayload
from shared.queue.postgres import PgQueue
from shared.store import ledger
from shared.store.db import Database
from shared.vision.detector import Detection, Prepared
from shared.vision.store import ImageResult, write_image_results

__all__ = ["STAGE", "ImageBatch", "ImageItem", "ResultWriter"]

log = logging.getLogger(__name__)

STAGE = "detected"


@dataclass
class ImageItem:
    """One claimed detection job on its way through the pipeline: prepared for the model, refused
    (``rejected``, written as such), or failed (``error``, the job retried unless ``poison``)."""

    claimed: ClaimedJob
    deadline: float
    prepared: Prepared | None = None
    rejected: ImageResult | None = None
    error: str | None = None
    poison: bool = False
    fmt: str | None = None
    payload: DetectPayload | None = None  # read in the worker's decode; a malformed job never gets past it

    @property
    def image_id(self) -> int:
        assert self.payload is not None
        return self.payload.image_id


@dataclass
class ImageBatch:
    items: list[ImageItem]
    found: list[list[Detection]] | None = None  # per runnable item, in order
    started: float = field(default_factory=time.monotonic)

    @property
    def runnable(self) -> list[ImageItem]:
        return [i for i in self.items if i.prepared is not None]


class ResultWriter:
    """Writes a batch's results and settles its jobs: acked when written, failed otherwise."""

    def __init__(self, db: Database, queue: JobSource, model: str, metrics: WorkerMetrics) -> None:
        self.db = db
        self.queue = queue
        self.model = model
        self.metrics = metrics
        # The Postgres queue acks inside the transaction that writes the results.
        self._pg_queue = queue if isinstance(queue, PgQueue) else None

    def write(self, batch: ImageBatch) -> None:
        """Write what the batch found or refused and ack those jobs; fail the rest (and, when the
        write itself fails, every job of the batch: they will be retried)."""
        failed = [i for i in batch.items if i.error is not None]
        done = [i for i in batch.items if i.error is None]
        try:
            if done:
                self._commit(batch, done)
        except Exception as exc:
            log.exception("writing %d results failed; the jobs will be retried", len(done))
            for item in done:
                item.error = f"write failed: {type(exc).__name__}"
            failed = batch.items
        for item in failed:
            try:
                self.queue.fail(item.claimed, item.error or "failed", retryable=not item.poison)
            except Exception:
                log.exception("could not record the failure of job %s; its lease will expire", item.claimed.id)
        self.metrics.count("images_failed", len(failed))

    def _commit(self, batch: ImageBatch, done: list[ImageItem]) -> None:
        results = [i.rejected for i in batch.items if i.rejected is not None]
        runnable = batch.runnable
        if runnable and batch.found is not None:
            for item, dets in zip(runnable, batch.found, strict=True):
                p = item.prepared
                assert p is not None
                results.append(ImageResult(item.image_id, p.width, p.height, item.fmt, tuple(dets)))
        elapsed_ms = (time.monotonic() - batch.started) * 1000
        t0 = time.perf_counter()
        with self.db.connection() as conn:
            write_image_results(conn, self.model, results)
            ok = [f"image:{r.image_id}" for r in results if r.rejected is None]
            bad = [f"image:{r.image_id}" for r in results if r.rejected is not None]
            ledger.record_many(conn, ok, STAGE, "ok", elapsed_ms)
            ledger.record_many(conn, bad, STAGE, "rejected", elapsed_ms)
            if self._pg_queue is not None:
                self._pg_queue.ack([i.claimed for i in done], conn=conn)
            conn.commit()
        if self._pg_queue is None:
            self.queue.ack([i.claimed for i in done])
        self.metrics.add_stage("write", time.perf_counter() - t0)
        n_bad = len(bad)
        self.metrics.record_written(len(results) - n_bad, n_bad)
