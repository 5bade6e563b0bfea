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
from shared.errors import ConfigError
from shared.services import Services
from shared.vision.store import DETECT_JOB

log = logging.getLogger("infra.gpu_worker")


def detect_queue(settings: Settings) -> Any:
    """The queue named by ``CONTENTFN_GPU_QUEUE``: an SQS queue URL or a Pub/Sub subscription
    (``projects/P/subscriptions/S``); unset means the Postgres jobs table."""
    name = settings.gpu_queue
    if not name:
        return None
    visibility_s, base_s, cap_s = (
        settings.queue_visibility_s,
        settings.queue_backoff_base_s,
        settings.queue_backoff_cap_s,
    )
    if name.startswith(("https://", "http://")):
        from shared.queue.sqs import SqsQueue

        return SqsQueue.create(
            name, kind=DETECT_JOB, wait_s=1, visibility_s=visibility_s, backoff_base_s=base_s, backoff_cap_s=cap_s
        )
    if name.startswith("projects/") and "/subscriptions/" in name:
        from shared.queue.pubsub import PubSubPullQueue

        return PubSubPullQueue.create(
            name, kind=DETECT_JOB, visibility_s=visibility_s, backoff_base_s=base_s, backoff_cap_s=cap_s
        )
    raise ConfigError(
        "CONTENTFN_GPU_QUEUE: neither an SQS queue URL nor a Pub/Sub subscription (projects/P/subscriptions/S)"
    )


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
