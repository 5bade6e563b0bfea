"""An object deleted from a bucket: remove what it alone produced.

The object's provenance links go (one version's, or every version's when the event names none);
tracks no other object or scraped page still feeds go with their embeddings, enrichments, analyses
and queued jobs. Links, tracks and the ledger entries change in one transaction. Redelivery is
harmless without an idempotency record: a second run finds no links and removes nothing.

The ingest idempotency records of the removed versions are dropped too, so the same version put
back (an unversioned S3 bucket re-uses the ETag as the version) is ingested again instead of being
answered from a record of rows that no longer exist.
"""

from __future__ import annotations

import logging
import time

from functions.ingest.core import STAGE as INGEST_STAGE
from functions.ingest.images import is_image_key
from functions.ingest.reports import DeletionReport
from shared.errors import ObjectNotFound, TransientError
from shared.events import ObjectDeleted
from shared.services import Services
from shared.store import ledger
from shared.store.provenance import DELETED_STAGE, record_removed, unlink_object

__all__ = ["STAGE", "NewerVersionNotIngested", "handle_object_deleted"]

log = logging.getLogger(__name__)

STAGE = DELETED_STAGE
_IDS_REPORTED = 100


class NewerVersionNotIngested(TransientError):
    """The deleted version was replaced by one not ingested yet (GCS announces an overwrite as the
    new generation's finalize *and* the old one's deletion, in no set order). Removing now would
    delete the tracks both versions hold, only for the new version's ingest to create them again
    under new ids; the retry comes after that ingest and removes just what the new version dropped."""


def handle_object_deleted(event: ObjectDeleted, services: Services) -> DeletionReport:
    """Remove what this object (version) alone produced; returns the deletion's report."""
    started = time.perf_counter()
    subject = f"object:{event.uri}"
    if event.generation is not None and not is_image_key(event.key):
        _wait_for_newer_version(event, services, subject)
    with services.db.connection() as conn:
        removal = unlink_object(conn, event.bucket, event.key, event.generation)
        prefix = f"object:{event.uri}#"
        keys = [prefix + event.generation] if event.generation else None
        with conn.cursor() as cur:
            if keys is None:
                cur.execute("DELETE FROM idempotency WHERE starts_with(key, %s)", (prefix,))
            else:
                cur.execute("DELETE FROM idempotency WHERE key = ANY(%s)", (keys,))
        elapsed_ms = (time.perf_counter() - started) * 1000
        report = DeletionReport(
            object=event.uri,
            generation=event.generation,
            **removal.model_dump(exclude={"track_ids"}),
            track_ids=removal.track_ids[:_IDS_REPORTED],
            duration_ms=round(elapsed_ms, 1),
        )
        detail = report.model_dump(mode="json")
        ledger.record(conn, subject, STAGE, "ok", detail=detail, duration_ms=elapsed_ms)
        record_removed(conn, removal, cause=subject, duration_ms=elapsed_ms)
        conn.commit()
    log.info(
        "deleted %s%s: %d link(s), %d track(s) removed",
        event.uri,
        f"#{event.generation}" if event.generation else "",
        removal.links,
        removal.tracks,
    )
    return report


def _wait_for_newer_version(event: ObjectDeleted, services: Services, subject: str) -> None:
    try:
        info = services.blob.stat(event.bucket, event.key)
    except ObjectNotFound:
        return  # the key is gone: nothing will re-create what this version fed
    current = info.generation or info.etag
    if current is None or current == event.generation:
        return
    with services.db.connection() as conn:
        row = conn.execute(
            "SELECT detail->>'generation' FROM ledger WHERE subject = %s AND stage = %s", (subject, INGEST_STAGE)
        ).fetchone()
        conn.commit()
    if row is None or row[0] != current:
        raise NewerVersionNotIngested(f"{event.uri}: version {current} replaces the deleted one and awaits ingest")
