"""scrape: on each schedule tick, pull new items from every configured source from its stored
cursor, drop items whose content is already stored, upsert the rest and queue their embed and
enrich jobs — tracks, jobs and the advanced cursor in one transaction per source.

A redelivered tick is answered from its idempotency record. Re-reading items anyway (a cursor
that re-reads its last page, two sources carrying one song) stores nothing twice: items are
deduplicated by content hash before the upsert, and the upsert itself is keyed by source id.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from functions.scrape.fetchers import Pull, pull_genius, pull_json_feed
from shared.events import ScheduleTick
from shared.idempotency import IdempotentOutcome, in_progress_ttl_s, run_once
from shared.intel.context import intel_for
from shared.models import TrackIn
from shared.observability.traces import SpanKind, span
from shared.queue.kinds import track_jobs
from shared.scrape_sources import ScrapeSource
from shared.services import Services
from shared.store import ledger
from shared.store.provenance import link_pages
from shared.store.tracks import upsert_tracks

__all__ = ["STAGE", "ScrapeReport", "SourceReport", "handle_tick", "scrape_source"]

log = logging.getLogger(__name__)

STAGE = "scraped"
_SKIP_REASONS_KEPT = 20


class SourceReport(BaseModel):
    """One source's pull: what was found, what was new, what was skipped and why (the first few)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    status: Literal["ok", "partial"]
    pages: int
    found: int
    duplicates: int
    stored: int
    inserted: int
    skipped: int
    skip_reasons: list[str]
    jobs: int
    error: str | None
    duration_ms: float


class ScrapeReport(BaseModel):
    """One tick over every configured source; ``partial`` when any source stopped part-way."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: list[SourceReport]
    stored: int
    status: Literal["ok", "partial"]


def handle_tick(tick: ScheduleTick, services: Services) -> IdempotentOutcome[ScrapeReport]:
    """Scrape every configured source once for this tick (at most once per tick)."""
    key = f"tick:scrape:{tick.schedule}:{tick.fired_at.isoformat()}"
    ttl_s = in_progress_ttl_s(services.settings.function_timeout_s, services.settings.idempotency_ttl_s)
    return run_once(services.db, key, ttl_s, lambda: _scrape_all(services), result_type=ScrapeReport)


def _scrape_all(services: Services) -> ScrapeReport:
    reports = []
    # One trace per tick, a child span per source: the jobs each source enqueues continue it.
    with span("scrape tick", kind=SpanKind.CONSUMER):
        for source in services.settings.scrape_sources:
            with span(
                "scrape source", attributes={"scrape.source": source.name, "scrape.kind": source.kind}
            ) as current:
                report = scrape_source(source, services)
                current.set_attribute("scrape.stored", report.stored)
                current.set_attribute("scrape.status", report.status)
            reports.append(report)
    return ScrapeReport(
        sources=reports,
        stored=sum(r.stored for r in reports),
        status="ok" if all(r.status == "ok" for r in reports) else "partial",
    )


def _cursor(conn: psycopg.Connection[Any], name: str) -> dict[str, Any]:
    row = conn.execute("SELECT cursor FROM scrape_cursors WHERE source = %s", (name,)).fetchone()
    return dict(row[0]) if row else {}


def _new_by_content(conn: psycopg.Connection[Any], items: list[TrackIn]) -> list[TrackIn]:
    """Items whose content is not stored yet (under any source), first of each hash only."""
    hashes = [item.hash for item in items]
    rows = conn.execute("SELECT content_hash FROM tracks WHERE content_hash = ANY(%s)", (list(set(hashes)),)).fetchall()
    seen = {r[0] for r in rows}
    out = []
    for item, h in zip(items, hashes, strict=True):
        if h not in seen:
            seen.add(h)
            out.append(item)
    return out


def scrape_source(source: ScrapeSource, services: Services) -> SourceReport:
    """Pull one source from its cursor and store what is new; returns the source's report."""
    started = time.perf_counter()
    intel = intel_for(services)
    with services.db.connection() as conn:
        cursor = _cursor(conn, source.name)
        conn.commit()
    if source.kind == "genius":
        token = services.settings.genius_token.get_secret_value() if services.settings.genius_token else None
        pull: Pull = pull_genius(intel.http, source, cursor, token=token)
    else:
        pull = pull_json_feed(intel.http, source, cursor)
    with services.db.connection() as conn:
        # Serialise concurrent scrapes of one source: the second sees the first's cursor and rows.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"scrape:{source.name}",))
        fresh = _new_by_content(conn, pull.items)
        result = upsert_tracks(conn, fresh)
        # Every item read is linked to its page, a duplicate of stored content to the track holding it.
        link_pages(conn, [(*item.key, item.hash, url) for item, url in zip(pull.items, pull.urls, strict=True)])
        jobs = [j for c in result.content_changed for j in track_jobs(c.id, c.content_hash)]
        queued = services.queue.enqueue_many(jobs, conn=conn)
        status: Literal["ok", "partial"] = "ok" if pull.error is None else "partial"
        conn.execute(
            """
            INSERT INTO scrape_cursors (source, cursor, items_total, last_status, last_error, updated_at)
            VALUES (%s, %s, %s, %s, %s, now())
            ON CONFLICT (source) DO UPDATE SET cursor = EXCLUDED.cursor,
                items_total = scrape_cursors.items_total + EXCLUDED.items_total,
                last_status = EXCLUDED.last_status, last_error = EXCLUDED.last_error, updated_at = now()
            """,
            (source.name, Jsonb(pull.cursor), result.inserted, status, pull.error),
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        report = SourceReport(
            source=source.name,
            status=status,
            pages=pull.pages,
            found=len(pull.items),
            duplicates=len(pull.items) - len(fresh),
            stored=result.inserted + result.updated,
            inserted=result.inserted,
            skipped=len(pull.skipped),
            skip_reasons=pull.skipped[:_SKIP_REASONS_KEPT],
            jobs=queued,
            error=pull.error,
            duration_ms=round(elapsed_ms, 1),
        )
        detail = report.model_dump(mode="json")
        ledger.record(
            conn, f"source:{source.name}", STAGE, status, error=pull.error, detail=detail, duration_ms=elapsed_ms
        )
        conn.commit()
    log.info(
        "scraped %s: %d found, %d new, %d skipped", source.name, len(pull.items), result.inserted, len(pull.skipped)
    )
    return report
