"""The local runtime's parts by role, so one process can run them all or each role its own process.

``contentfn local up`` runs every role in one process (:class:`local.runtime.LocalStack`);
``contentfn local worker ROLE...`` runs only the named roles over an external PostgreSQL, as a
supervisor would run one process per role. Both build the parts here, so they cannot drift.

Roles whose loops share the queue in the database (embed, enrich, analyze, detect, streams) may run
in any number of processes at once; ``watcher`` and ``scrape`` keep their state in memory and are
meant to run once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from local.intel_workers import AnalyzeWorker, EnrichWorker, ScrapeScheduler
from local.workers import BucketWatcher, EmbedWorker, IndexWorker
from shared.config import Settings
from shared.errors import ConfigError, ModelNotReady
from shared.services import Services

__all__ = ["ROLES", "Part", "RoleProcess", "api_part", "detect_parts", "stream_parts"]

log = logging.getLogger(__name__)


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


class RoleProcess:
    """Some roles in this process, over the external database of the settings, until stopped.

    The schema is migrated before the parts start (a no-op when it is current), so the first
    process of a fresh database brings it up to date.
    """

    def __init__(self, settings: Settings, roles: Sequence[str]) -> None:
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise ConfigError(f"unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}")
        if not roles:
            raise ConfigError(f"name at least one role: {', '.join(ROLES)}")
        self.settings = settings
        self.roles = list(dict.fromkeys(roles))
        self.services: Services | None = None
        self.parts: list[Any] = []
        self.stopped = threading.Event()

    def start(self) -> RoleProcess:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        (s.buckets_dir / s.bucket).mkdir(parents=True, exist_ok=True)
        self.services = Services.from_settings(s)
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
