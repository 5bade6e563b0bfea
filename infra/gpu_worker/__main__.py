"""``python -m infra.gpu_worker``: the GPU service process (image jobs, streams, /healthz, /metrics).

With one pipeline (the CPU default) everything runs in this process. With more
(``CONTENTFN_GPU_PROCESSES``, or one per four cores on a GPU host), this process supervises that
many pipeline processes and serves their health and metrics (see ``infra.gpu_worker.pool``).

SIGTERM (what ECS and Cloud Run send) stops claiming, finishes or releases in-flight work within
``CONTENTFN_GPU_GRACE_S``, gives up stream leases and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from prometheus_client import CollectorRegistry, generate_latest

from infra.gpu_worker.http import HealthServer
from infra.gpu_worker.memory import keep_freed_memory
from infra.gpu_worker.outbox import outbox_relay
from infra.gpu_worker.pool import WorkerPool, auto_processes
from infra.gpu_worker.stream_runner import StreamSupervisor
from infra.gpu_worker.wiring import detect_queue, worker_services
from infra.gpu_worker.worker import GpuWorker
from shared.metrics.state import watch_store
from shared.observability import configure_logging, configure_tracing, flush_traces
from shared.platform.runtime import load_entry_settings

__all__ = ["detect_queue", "main"]

log = logging.getLogger("infra.gpu_worker")
_SERVICE = "contentfn-gpu-worker"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.gpu_worker")
    parser.add_argument("--no-streams", action="store_true", help="serve image jobs only")
    args = parser.parse_args()
    settings = load_entry_settings()  # with the cloud knobs: the object store and its endpoints
    # JSON lines on stdout: what ECS's awslogs driver and Cloud Run's agent ship and parse.
    configure_logging("json", _SERVICE, level=settings.log_level)
    configure_tracing(_SERVICE, settings.otel_exporter_endpoint, sample_ratio=settings.otel_sample_ratio)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # This process is the GPU service (or supervises its pipelines): tune malloc for the pipeline.
    # Not done by the local runtime, where the worker shares a process with every other function.
    keep_freed_memory(settings.gpu_malloc_keep_mib)
    services = worker_services(settings, migrate=settings.migrate_on_start)
    try:
        processes = auto_processes(settings)
        queue = detect_queue(settings)
        if processes > 1 or settings.gpu_device_process:
            pool = WorkerPool(services, processes, streams=not args.no_streams, queue=queue).start()
            runner: GpuWorker | WorkerPool = pool
            streams = None
        else:
            worker = GpuWorker(services, queue=queue).start()
            streams = None if args.no_streams else StreamSupervisor(services, worker.detector, gate=worker.gate).start()
            runner = worker
        relay = outbox_relay(settings, services.queue, interval_s=settings.gpu_outbox_relay_s)
        if relay is not None:
            relay.start()
        # The service scraped in the cloud also reports the store: outbox depth and age by kind,
        # dead letters, today's LLM budget (functions are not scraped; see shared.metrics).
        store_registry = CollectorRegistry(auto_describe=False)
        watch_store(store_registry, services.db, settings.llm_daily_token_budget)
        health = HealthServer(
            runner,
            settings.gpu_metrics_host,
            settings.gpu_metrics_port,
            extra=relay.health if relay else None,
            more_metrics=lambda: generate_latest(store_registry).decode(),
        ).start()
        log.info(
            "gpu worker up (%d pipeline processes): %s; health on port %d", processes, runner.health(), health.port
        )
        print(f"gpu-worker ready port={health.port} processes={processes}", flush=True)
        stop.wait()
        log.info("stopping: draining in-flight work")
        if relay is not None:
            relay.stop()
        if streams is not None:
            streams.stop()
        runner.stop()
        health.stop()
    finally:
        services.close()
        flush_traces()


if __name__ == "__main__":
    main()
