"""The local runtime's parts by role, so one process can run them all or each role its own process.

``contentfn local up`` runs every role in one process (:class:`local.runtime.LocalStack`);
``contentfn local worker ROLE...`` runs only the named roles over an external PostgreSQL, as a
supervisor would run one process per role. Both build the parts here, so they cannot drift.

Roles whose loops share the queue in the database (embed, enrich, analyze, detect, streams) may run
in any number of processes at once; ``watcher`` and ``scrape`` keep their state in memory and are
meant to run once.

A role process that starts while its database is away (restarting, failing over, not up yet)
waits for it, retrying with backoff for up to :data:`STARTUP_DB_WAIT_S`, instead of exiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import psycopg

from local.intel_workers import AnalyzeWorker, EnrichWorker, ScrapeScheduler
from local.workers import BucketWatcher, EmbedWorker, IndexWorker
from shared.config import Settings
from shared.errors import ConfigError, ModelNotReady
from shared.queue.base import backoff_delay
from shared.services import Services
from shared.store.db import DatabaseUnavailable

__all__ = [
    "ROLES",
    "STARTUP_DB_WAIT_S",
    "Part",
    "RoleProcess",
    "api_part",
    "detect_parts",
    "services_when_reachable",
    "stream_parts",
]

log = logging.getLogger(__name__)

# How long a role process waits for an unreachable database at startup before it gives up (a
# restart with crash recovery or a failover takes seconds to a minute; past this a supervisor's
# restart is as good as waiting longer).
STARTUP_DB_WAIT_S = 120.0


class Part(Protocol):
    def stop(self) -> Any: ...


def api_part(services: Services, port: int | None = None) -> Any:
    """The HTTP API (not started)."""
    from functions.api.core import Api
    from local.server import ApiServer

    s = services.settings
    return ApiServer(Api(services), s.api_host, s.api_port if port is None else port)


def detect_parts(services: Services, detector: Any) -> list[Any]:
    """The image detection worker and, when ``local_gpu_metrics_port`` is set, its /healthz and /metrics."""
    from infra.gpu_worker.http import HealthServer
    from infra.gpu_worker.worker import GpuWorker

    worker = GpuWorker(services, detector)
    log.info("image detection on %s (%s)", detector.provider, detector.name)
    parts: list[Any] = [worker]
    port = services.settings.local_gpu_metrics_port
    if port is not None:  # the GPU service's own /healthz and /metrics, as in the cloud
        parts.append(HealthServer(worker, services.settings.api_host, port))
    return parts


def stream_parts(services: Services, detector: Any) -> list[Any]:
    """The stream supervisor: leases registered streams and detects their frames."""
    from infra.gpu_worker.stream_runner import StreamSupervisor

    return [StreamSupervisor(services, detector)]


def load_local_detector(services: Services) -> Any | None:
    """The detector of the settings; None (detection off, a warning) when no model is present."""
    from shared.vision.detector import load_detector

    try:
        return load_detector(services.settings)
    except ModelNotReady as exc:
        log.warning("image detection is off: %s", exc)
        return None


def _vision(build: Callable[[Services, Any], list[Any]]) -> Callable[[Services], list[Any]]:
    def parts(services: Services) -> list[Any]:
        detector = load_local_detector(services)
        return [] if detector is None else build(services, detector)

    return parts


# Role name -> the parts it runs (not started yet).
ROLES: dict[str, Callable[[Services], list[Any]]] = {
    "api": lambda svc: [api_part(svc)],
    "watcher": lambda svc: [BucketWatcher(svc)],
    "embed": lambda svc: [EmbedWorker(svc)],
    "index": lambda svc: [IndexWorker(svc)],
    "scrape": lambda svc: [ScrapeScheduler(svc)],
    "enrich": lambda svc: [EnrichWorker(svc)],
    "analyze": lambda svc: [AnalyzeWorker(svc)],
    "detect": _vision(detect_parts),
    "streams": _vision(stream_parts),
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def services_when_reachable(
    settings: Settings, stop: threading.Event, wait_s: float = STARTUP_DB_WAIT_S
) -> Services | None:
    """The services of the settings (migrated, pool open) once the database answers.

    A refused or lost connection while connecting, migrating or opening the pool (the server
    restarting, in crash recovery, failing over) is retried with the local workers' failure backoff
    (doubling from ``worker_poll_s`` up to ``worker_failure_backoff_cap_s``), one log line per
    retry. Past ``wait_s`` the last error is raised as :class:`DatabaseUnavailable`. None when
    ``stop`` is set while waiting. A wrong login or database name is also answered as a failed
    connection, so it is retried too, each line naming the server's answer. Any other error
    (pending migrations this login may not apply, an unreadable secret) is raised at once.
    """
    started = time.monotonic()
    failures = 0
    while True:
        try:
            return Services.from_settings(settings)
        except (psycopg.OperationalError, DatabaseUnavailable) as exc:
            cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable) and exc.__cause__ else exc
            failures += 1
            waited = time.monotonic() - started
            delay = backoff_delay(failures, settings.worker_poll_s, settings.worker_failure_backoff_cap_s)
            if waited + delay > wait_s:
                raise DatabaseUnavailable(
                    f"database not reachable after {waited:.0f} s of waiting at startup: {_first_line(cause)}"
                ) from exc
            log.warning(
                "database not reachable at startup (%s); retrying in %.1f s (waited %.0f of %.0f s)",
                _first_line(cause),
                delay,
                waited,
                wait_s,
            )
        if stop.wait(delay):
            return None


class RoleProcess:
    """Some roles in this process, over the external database of the settings, until stopped.

    The schema is migrated before the parts start (a no-op when it is current), so the first
    process of a fresh database brings it up to date. A database that is away at startup is
    waited for (:func:`services_when_reachable`).
    """

    def __init__(self, settings: Settings, roles: Sequence[str]) -> None:
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise ConfigError(f"unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}")
        if not roles:
            raise ConfigError(f"name at least one role: {', '.join(ROLES)}")
        self.roles = list(dict.fromkeys(roles))
        # A process of the API alone answers requests only; with other roles it embeds batches too.
        self.settings = settings.for_serving_http() if self.roles == ["api"] else settings
        self.services: Services | None = None
        self.parts: list[Any] = []
        self.stopped = threading.Event()

    def start(self, stop: threading.Event | None = None) -> RoleProcess:
        """Start the roles' parts; when ``stop`` is set while the database is waited for, none is started."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        (s.buckets_dir / s.bucket).mkdir(parents=True, exist_ok=True)
        self.services = services_when_reachable(s, stop or threading.Event())
        if self.services is None:
            log.info("stopped while waiting for the database")
            return self
        if "embed" in self.roles or "api" in self.roles:
            _ = self.services.embedder  # fail fast on a missing model, before any job is claimed
        for role in self.roles:
            for part in ROLES[role](self.services):
                part.start()
                self.parts.append(part)
        log.info("roles %s running (%d parts)", ", ".join(self.roles), len(self.parts))
        return self

    def stop(self) -> None:
        for part in reversed(self.parts):
            part.stop()
        self.parts = []
        if self.services is not None:
            self.services.close()
            self.services = None
        self.stopped.set()
