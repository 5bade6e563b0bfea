"""Deferred detection jobs: moved from the Postgres outbox to the GPU service's cloud queue once due.

Admission control defers a detection job by writing it to Postgres invisible until the backlog
should have room for it. A producer relays only the jobs that are visible, at the end of its own
invocation, so a job that falls due after the last upload would wait for the next one. The GPU
service, which runs while there is work, therefore relays the due ``detect`` jobs itself every few
seconds, to the queue that ``CONTENTFN_QUEUES`` names for ``detect`` (Terraform sets it for the
service: the SQS queue it consumes, or the Pub/Sub topic of its subscription). Delivery is the
outbox relay's: at least once, rows deleted only after the queue accepted them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from shared.config import Settings
from shared.platform.runtime import EntrySettings
from shared.queue.base import JobSource
from shared.queue.relay import Publisher, publishers_for, relay_outbox
from shared.vision.store import DETECT_JOB

__all__ = ["OutboxRelay", "outbox_relay"]

log = logging.getLogger(__name__)


class OutboxRelay:
    """A thread relaying due jobs of the publishers' kinds every ``interval_s``."""

    def __init__(self, queue: JobSource, publishers: Mapping[str, Publisher], *, interval_s: float = 5.0) -> None:
        self._queue = queue
        self._publishers = dict(publishers)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self.relayed = 0
        self.last_error: str | None = None

    def start(self) -> OutboxRelay:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def relay_once(self) -> int:
        """One pass; what cannot be sent now stays in Postgres for the next one."""
        try:
            report = relay_outbox(self._queue, self._publishers, budget_s=max(1.0, self._interval_s))
        except Exception as exc:  # the database or a client is down: the next pass tries again
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("relaying due detection jobs failed: %s", self.last_error)
            return 0
        self.last_error = "; ".join(f"{kind}: {error}" for kind, error in report.failed.items()) or None
        if report.total:
            self.relayed += report.total
            log.info("relayed %d due jobs from the outbox: %s", report.total, report.published)
        return report.total

    def health(self) -> dict[str, Any]:
        return {"outbox_relayed": self.relayed, "outbox_last_error": self.last_error}

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.relay_once()


def outbox_relay(settings: Settings, queue: JobSource, *, interval_s: float = 5.0) -> OutboxRelay | None:
    """The relay for due ``detect`` jobs when ``CONTENTFN_QUEUES`` names a queue for them (a cloud
    deployment); None otherwise (locally the worker claims them from Postgres itself)."""
    if not isinstance(settings, EntrySettings) or DETECT_JOB not in settings.queues:
        return None
    publishers = publishers_for(
        {DETECT_JOB: settings.queues[DETECT_JOB]},
        aws_endpoint_url=settings.aws_endpoint_url,
        aws_region=settings.aws_region,
    )
    return OutboxRelay(queue, publishers, interval_s=interval_s)
