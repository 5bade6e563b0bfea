"""ingest for images: an object under ``images/`` becomes one ``images`` row and one detection job.

Content-addressed: the row is keyed by the sha256 of the bytes, so the same photo uploaded twice
(under any key) is queued for the GPU once. Refusals (too large, not JPEG/PNG/WebP, too many
pixels) are recorded on the image row with their reason and never reach the GPU queue. The job is
queued in the same transaction as the row; when the capped GPU fleet is behind, admission defers it.
"""

from __future__ import annotations

import hashlib
import logging
import time

from functions.ingest.reports import ImageReport, RejectedReport
from shared.errors import PoisonError
from shared.events import ObjectCreated
from shared.idempotency import Claim
from shared.queue.base import NewJob
from shared.queue.kinds import DETECT_JOB, DetectPayload
from shared.services import Services
from shared.store import ledger
from shared.vision.capacity import Capacity, admission
from shared.vision.decode import ImageRejected, check_image, sniff_format
from shared.vision.store import upsert_image

__all__ = ["IMAGE_PREFIX", "STAGE", "detect_job", "ingest_image", "is_image_key"]

log = logging.getLogger(__name__)

IMAGE_PREFIX = "images/"
STAGE = "ingested"


def is_image_key(key: str) -> bool:
    return key.startswith(IMAGE_PREFIX)


def detect_job(image_id: int, content_hash: str, bucket: str, key: str, *, delay_s: float = 0.0) -> NewJob:
    payload = DetectPayload(image_id=image_id, bucket=bucket, key=key, content_hash=content_hash)
    return payload.to_job(delay_s=delay_s)


def ingest_image(event: ObjectCreated, services: Services, claim: Claim | None = None) -> ImageReport | RejectedReport:
    """Record the image and queue its detection (or record why it is refused). Transient errors raise.
    ``claim`` (the event's idempotency claim) is completed in the transaction that records the image."""
    settings = services.settings
    subject = f"object:{event.uri}"
    started = time.perf_counter()
    try:
        with services.blob.open(event.bucket, event.key, max_bytes=settings.image_max_bytes) as stream:
            data = stream.read(settings.image_max_bytes + 1)
    except PoisonError as exc:  # too large (ObjectTooLarge), missing, unsafe key
        return _refuse_unread(event, services, subject, str(exc), started)
    content_hash = hashlib.sha256(data).hexdigest()
    fmt = sniff_format(data)
    refusal = _refusal(data, settings.image_max_bytes, settings.image_max_pixels)
    with services.db.connection() as conn:
        image_id, status, created = upsert_image(
            conn,
            content_hash=content_hash,
            bucket=event.bucket,
            key=event.key,
            size=len(data),
            fmt=fmt,
            rejected=refusal,
        )
        queued, admitted = False, None
        if refusal is None and status == "pending":
            # New, or known but never detected (its job dead-lettered): queue it. While a job for
            # this content is still queued, the dedup key makes this a no-op.
            elsewhere = services.remote_backlog(DETECT_JOB) if services.remote_backlog else 0
            gate = admission(conn, Capacity.from_settings(settings), DETECT_JOB, queued_elsewhere=elsewhere)
            job = detect_job(image_id, content_hash, event.bucket, event.key, delay_s=gate.defer_s)
            queued = services.queue.enqueue_many([job], conn=conn) == 1
            admitted = gate.as_dict()
        elapsed_ms = (time.perf_counter() - started) * 1000
        report = ImageReport(
            status="rejected" if status == "rejected" else "ok",
            object=event.uri,
            image_id=image_id,
            content_hash=content_hash,
            new=created,
            queued=queued,
            error=refusal,
            admission=admitted,
            duration_ms=round(elapsed_ms, 1),
        )
        detail = report.model_dump(mode="json", exclude_none=True)
        ledger.record(
            conn, subject, STAGE, "rejected" if refusal else "ok", error=refusal, detail=detail, duration_ms=elapsed_ms
        )
        if claim is not None:
            claim.complete(conn, report)
        conn.commit()
    log.info("image %s: id %d, %s", event.uri, image_id, refusal or ("queued" if queued else "known"))
    return report


def _refusal(data: bytes, max_bytes: int, max_pixels: int) -> str | None:
    """Why this image can never be detected, read from its bytes and header only; None if it can."""
    try:
        check_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageRejected as exc:
        return f"{exc.reason}: {exc}"
    return None


def _refuse_unread(
    event: ObjectCreated, services: Services, subject: str, error: str, started: float
) -> RejectedReport:
    elapsed_ms = (time.perf_counter() - started) * 1000
    report = RejectedReport(object=event.uri, kind="image", error=error, duration_ms=round(elapsed_ms, 1))
    with services.db.connection() as conn:
        detail = report.model_dump(mode="json")
        ledger.record(conn, subject, STAGE, "rejected", error=error, detail=detail, duration_ms=elapsed_ms)
        conn.commit()
    services.queue.dead_letter("ingest", event.model_dump(mode="json"), error, dedup_key=event.idempotency_key)
    log.warning("refused image %s: %s", event.uri, error)
    return report
