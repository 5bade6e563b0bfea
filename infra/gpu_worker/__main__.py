"""``python -m infra.gpu_worker``: the GPU service process (image jobs, streams, /healthz, /metrics).

SIGTERM (what ECS and Cloud Run send) stops claiming, finishes or releases in-flight work within
``CONTENTFN_GPU_GRACE_S``, gives up stream leases and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from infra.gpu_worker.http import HealthServer
from infra.gpu_worker.streams import StreamSupervisor
from infra.gpu_worker.worker import GpuWorker
from shared.config import Settings, get_settings
from shared.services import Services
from shared.vision.store import DETECT_JOB

log = logging.getLogger("infra.gpu_worker")


def detect_queue(settings: Settings) -> Any:
    """The queue named by ``CONTENTFN_GPU_QUEUE``: an SQS queue URL; unset means the Postgres jobs table.

    A Pub/Sub subscription is not consumed yet: the worker says so and uses the Postgres queue.
    """
    name = settings.gpu_queue
    if not name:
        return None
    if name.startswith(("https://", "http://")):
        from shared.queue.sqs import SqsQueue

        return SqsQueue.create(
            name,
            kind=DETECT_JOB,
            visibility_s=settings.queue_visibility_s,
            wait_s=1,
            backoff_base_s=settings.queue_backoff_base_s,
            backoff_cap_s=settings.queue_backoff_cap_s,
        )
    log.warning("CONTENTFN_GPU_QUEUE is not an SQS queue URL; pulling detection jobs from PostgreSQL")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.gpu_worker")
    parser.add_argument("--no-streams", action="store_true", help="serve image jobs only")
    args = parser.parse_args()
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    services = Services.from_settings(settings)
    try:
        worker = GpuWorker(services, queue=detect_queue(settings)).start()
        streams = None if args.no_streams else StreamSupervisor(services, worker.detector).start()
        health = HealthServer(worker, settings.gpu_metrics_host, settings.gpu_metrics_port).start()
        log.info("gpu worker up: %s; health on port %d", worker.health(), health.port)
        print(f"gpu-worker ready port={health.port}", flush=True)
        stop.wait()
        log.info("stopping: draining in-flight work")
        if streams is not None:
            streams.stop()
        worker.stop()
        health.stop()
    finally:
        services.close()


if __name__ == "__main__":
    main()
