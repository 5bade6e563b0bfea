"""ingest: an uploaded track file becomes rows in ``tracks`` plus one ``embed`` job per changed track.

The whole file lands in one transaction (rows, jobs and the ledger entry together), so a crash
half-way leaves nothing behind and the platform's retry starts clean. Redelivery of the same
object version is answered from the idempotency record without touching the data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any, Literal

from functions.ingest.images import ingest_image, is_image_key
from functions.ingest.parsing import BadRow, ParsedRow, detect_format, iter_rows
from functions.ingest.reports import BadRowReport, FileReport, IngestReport, RejectedReport
from shared.errors import PoisonError
from shared.events import ObjectCreated
from shared.idempotency import Claim, IdempotentOutcome, in_progress_ttl_s, run_claimed
from shared.metrics import INGEST_OBJECTS, INGEST_ROWS, INGEST_SECONDS
from shared.observability import log_context, span
from shared.observability.traces import SpanKind
from shared.queue.kinds import TRACK_JOB_KINDS
from shared.services import Services
from shared.store import ledger
from shared.store.provenance import ObjectVersion
from shared.store.tracks import upsert_tracks

__all__ = ["STAGE", "handle_object_created", "record_given_up"]

log = logging.getLogger(__name__)

STAGE = "ingested"


def handle_object_created(event: ObjectCreated, services: Services) -> IdempotentOutcome[IngestReport]:
    """Ingest one object version, at most once. Returns the file's report (replayed on redelivery).

    Poison input (unknown extension, too large, not UTF-8, unparseable) is *not* raised: it is
    recorded in the ledger and the dead-letter store and reported with ``status="rejected"``, so
    the platform acknowledges it instead of retrying something that can never succeed.
    Transient failures (database down) are raised for the platform to retry.
    Objects under ``images/`` are images: recorded and queued for the GPU detector instead.
    """

    def effect(claim: Claim) -> IngestReport:
        started = time.perf_counter()
        image = is_image_key(event.key)
        report = ingest_image(event, services, claim) if image else _ingest(event, services, claim)
        _record_ingest("image" if image else "tracks", report, time.perf_counter() - started)
        return report

    settings = services.settings
    ttl_s = in_progress_ttl_s(settings.function_timeout_s, settings.idempotency_ttl_s)
    # The root of the upload's trace: every job queued inside carries this span's context on.
    attributes = {"object.bucket": event.bucket, "object.key": event.key, "object.generation": event.generation}
    with span("ingest object", kind=SpanKind.CONSUMER, attributes=attributes), log_context(object=event.uri):
        return run_claimed(services.db, event.idempotency_key, ttl_s, effect, result_type=IngestReport)


def _ingest(event: ObjectCreated, services: Services, claim: Claim | None = None) -> FileReport | RejectedReport:
    settings = services.settings
    subject = f"object:{event.uri}"
    started = time.perf_counter()
    bad: list[BadRowReport] = []
    counts = {"bad": 0}

    def good_rows(stream: Any, fmt: Any) -> Iterator[ParsedRow]:
        for item in iter_rows(
            stream, fmt, max_field_bytes=settings.max_field_bytes, max_record_bytes=settings.max_record_bytes
        ):
            if isinstance(item, BadRow):
                counts["bad"] += 1
                if len(bad) < settings.bad_rows_reported:
                    bad.append(BadRowReport(line=item.line, reason=item.reason))
            else:
                yield item

    try:
        fmt = detect_format(event.key)
        with services.blob.open(event.bucket, event.key, max_bytes=settings.max_upload_bytes) as stream:
            with services.db.connection() as conn:
                # Each row's track is linked to this object version and line in the upsert itself.
                origin = ObjectVersion(event.bucket, event.key, event.version)
                result = upsert_tracks(conn, good_rows(stream, fmt), origin=origin)
                changed = result.content_changed
                queued = services.queue.enqueue_track_jobs(
                    TRACK_JOB_KINDS, [t.id for t in changed], [t.content_hash for t in changed], conn=conn
                )
                embed_jobs = len(changed)
                elapsed_ms = (time.perf_counter() - started) * 1000
                status = _status(result.received, counts["bad"])
                report = FileReport(
                    status=status,
                    object=event.uri,
                    generation=event.generation or event.etag,
                    format=fmt,
                    rows_ok=result.received,
                    rows_bad=counts["bad"],
                    inserted=result.inserted,
                    updated=result.updated,
                    unchanged=result.unchanged,
                    embed_jobs=embed_jobs,
                    jobs_queued=queued,
                    bad_rows=bad,
                    duration_ms=round(elapsed_ms, 1),
                )
                ledger.record(
                    conn,
                    subject,
                    STAGE,
                    status,
                    error=_bad_summary(counts["bad"], bad),
                    detail=report.model_dump(mode="json"),
                    duration_ms=elapsed_ms,
                )
                if claim is not None:
                    claim.complete(conn, report)  # "done" commits with the rows, or not at all
                conn.commit()
    except PoisonError as exc:
        return _reject(event, services, subject, str(exc), started)
    log.info(
        "ingested %s: %d rows ok, %d bad, %d new, %d changed",
        event.uri,
        report.rows_ok,
        report.rows_bad,
        report.inserted,
        report.updated,
    )
    return report


def _status(good: int, bad: int) -> Literal["ok", "partial", "failed"]:
    if bad == 0:
        return "ok"
    return "partial" if good else "failed"


def _bad_summary(n_bad: int, bad: list[BadRowReport]) -> str | None:
    if not n_bad:
        return None
    first = bad[0] if bad else None
    where = f"; first at line {first.line}: {first.reason}" if first else ""
    return f"{n_bad} bad row(s){where}"


def _reject(event: ObjectCreated, services: Services, subject: str, error: str, started: float) -> RejectedReport:
    elapsed_ms = (time.perf_counter() - started) * 1000
    report = RejectedReport(
        object=event.uri,
        kind="file",
        generation=event.generation or event.etag,
        error=error,
        duration_ms=round(elapsed_ms, 1),
    )
    with services.db.connection() as conn:
        detail = report.model_dump(mode="json")
        ledger.record(conn, subject, STAGE, "rejected", error=error, detail=detail, duration_ms=elapsed_ms)
        conn.commit()
    services.queue.dead_letter("ingest", event.model_dump(mode="json"), error, dedup_key=event.idempotency_key)
    log.warning("rejected %s: %s", event.uri, error)
    return report


def record_given_up(
    services: Services, *, bucket: str, key: str, generation: str | None, size: int | None, error: str, attempts: int
) -> None:
    """Record an object whose ingest kept failing unexpectedly: ``failed`` in the ledger, and dead-lettered.

    The retrying caller (the local bucket watcher) calls this once it stops trying, so the object is
    visible where refused uploads are ("where is my file?", the dead-letter store) instead of only in
    logs. A key that is not valid text (a file name in another encoding) is recorded with escapes:
    it is why ObjectCreated could not hold it, and PostgreSQL refuses it, so the record must not.
    """
    safe_key = key.encode("utf-8", "backslashreplace").decode("utf-8")
    event = ObjectCreated(bucket=bucket, key=safe_key, size=size, generation=generation)
    subject = f"object:{event.uri}"
    error = f"gave up after {attempts} attempt(s): {error}"
    # The version is kept: a deletion of the version this one replaced looks for it in the ledger.
    report = {"status": "failed", "object": event.uri, "generation": generation, "error": error, "attempts": attempts}
    with services.db.connection() as conn:
        ledger.record(conn, subject, STAGE, "failed", error=error, detail=report)
        conn.commit()
    services.queue.dead_letter(
        "ingest", event.model_dump(mode="json"), error, dedup_key=event.idempotency_key, attempts=attempts
    )
    log.error("gave up on %s: %s", event.uri, error)


def _record_ingest(kind: str, report: IngestReport, seconds: float) -> None:
    # Only a first delivery gets here (a redelivery replays the stored report): nothing is counted twice.
    INGEST_OBJECTS.labels(kind, report.status).inc()
    INGEST_SECONDS.labels(kind).observe(seconds)
    if isinstance(report, FileReport):
        INGEST_ROWS.labels("ok").inc(report.rows_ok)
        INGEST_ROWS.labels("bad").inc(report.rows_bad)
