"""The local runtime: embedded PostgreSQL + pgvector, the API, the bucket watcher and the workers."""

from __future__ import annotations

import logging
import socket
from types import TracebackType
from typing import Any

from local.intel_workers import intel_loops
from local.roles import api_part
from local.server import ApiServer
from local.vision_workers import vision_loops
from local.workers import BucketWatcher, EmbedWorker, IndexWorker
from shared.config import Settings
from shared.observability import configure_logging, configure_tracing, flush_traces
from shared.services import Services

__all__ = ["LocalStack", "port_is_free"]

log = logging.getLogger(__name__)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class LocalStack:
    """Everything ``contentfn local up`` runs, in one process, stopped in reverse order."""

    def __init__(self, settings: Settings, *, serve_api: bool = True, port: int | None = None) -> None:
        self.settings = settings
        self.serve_api = serve_api
        self.requested_port = settings.api_port if port is None else port
        self.services: Services | None = None
        self.server: ApiServer | None = None
        self.watcher: BucketWatcher | None = None
        self.embed_worker: EmbedWorker | None = None
        self.index_worker: IndexWorker | None = None
        self.intel_loops: list[Any] = []  # scrape scheduler, enrich and analyze workers
        self.vision_loops: list[Any] = []  # image detection worker and stream supervisor (CPU here)

    def start(self) -> LocalStack:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        (s.buckets_dir / s.bucket).mkdir(parents=True, exist_ok=True)
        self.services = Services.from_settings(s)
        # The console stays readable; records gain the trace id and the job or object they concern.
        configure_logging("console", "contentfn-local", level=s.log_level)
        configure_tracing("contentfn-local", s.otel_exporter_endpoint, sample_ratio=s.otel_sample_ratio)
        _ = self.services.embedder  # load the model now: fail fast, and the first search is warm
        if self.serve_api:
            self.server = api_part(self.services, self.requested_port)
            self.server.start()
        self.embed_worker = EmbedWorker(self.services)
        self.embed_worker.start()
        self.index_worker = IndexWorker(self.services)
        self.index_worker.start()
        self.watcher = BucketWatcher(self.services)
        self.watcher.start()
        self.intel_loops = intel_loops(self.services)
        for loop in self.intel_loops:
            loop.start()
        self.vision_loops = vision_loops(self.services)
        for loop in self.vision_loops:
            loop.start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None, "the API is not served"
        return f"http://{self.settings.api_host}:{self.server.port}"

    @property
    def gpu_metrics_url(self) -> str | None:
        """The CPU detection worker's /metrics, when ``local_gpu_metrics_port`` is set and a model loaded."""
        from infra.gpu_worker.http import HealthServer

        for part in self.vision_loops:
            if isinstance(part, HealthServer):
                return f"http://{self.settings.api_host}:{part.port}/metrics"
        return None

    def stop(self) -> None:
        for part in (*self.vision_loops, *self.intel_loops, self.watcher, self.embed_worker, self.index_worker):
            if part is not None:
                part.stop()
        if self.server is not None:
            self.server.stop()
        if self.services is not None:
            self.services.close()
        flush_traces()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
