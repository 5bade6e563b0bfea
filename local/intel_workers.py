"""Local loops for content intelligence: the scrape scheduler and the enrich and analyze workers.

The scheduler turns wall-clock time into ``ScheduleTick`` events, as Cloud Scheduler or EventBridge
Scheduler would: one tick at start (when sources are configured), then one per interval. Ticks
are named by their fire time, so a restart within the same second is not scraped twice.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from functions.analyze.core import run_analyze_batch
from functions.enrich.core import run_enrich_batch
from functions.scrape.core import handle_tick
from local.workers import _Loop
from shared.events import ScheduleTick
from shared.queue.kinds import EMBED_JOB
from shared.services import Services

__all__ = ["AnalyzeWorker", "EnrichWorker", "ScrapeScheduler", "intel_loops"]

log = logging.getLogger(__name__)


class ScrapeScheduler(_Loop):
    name = "scrape-scheduler"

    def __init__(self, services: Services, interval_s: float = 3600.0) -> None:
        super().__init__(services)
        self.interval_s = interval_s
        self._next = time.monotonic()

    def tick(self) -> bool:
        if not self.services.settings.scrape_sources or time.monotonic() < self._next:
            return False
        self._next = time.monotonic() + self.interval_s
        fired = datetime.now(UTC).replace(microsecond=0)
        report = handle_tick(ScheduleTick(schedule="scrape-local", fired_at=fired), self.services).result
        log.info("scrape tick: %s, %s new tracks", report.status, report.stored)
        return False


class _AfterEmbedding(_Loop):
    """A worker that yields the machine to the embed worker while embeddings are waiting.

    On one machine the stages share the cores; making a new upload searchable comes first, and
    enrichment and analysis catch up as soon as the embed queue has nothing ready. (In the cloud
    each function scales on its own queue and this does not apply.)
    """

    def tick(self) -> bool:
        if self.services.queue.has_ready(EMBED_JOB):
            return False
        return self.work()

    def work(self) -> bool:
        raise NotImplementedError


class EnrichWorker(_AfterEmbedding):
    name = "enrich-worker"

    def work(self) -> bool:
        return run_enrich_batch(self.services).claimed > 0


class AnalyzeWorker(_AfterEmbedding):
    name = "analyze-worker"

    def work(self) -> bool:
        return run_analyze_batch(self.services).claimed > 0


def intel_loops(services: Services) -> list[_Loop]:
    """The loops the local runtime starts beside its own."""
    return [ScrapeScheduler(services), EnrichWorker(services), AnalyzeWorker(services)]
