"""The GPU service's loops in the local runtime, on CPU: image detection jobs and streams."""

from __future__ import annotations

import logging
from typing import Any

from shared.errors import ModelNotReady
from shared.services import Services

__all__ = ["vision_loops"]

log = logging.getLogger(__name__)


def vision_loops(services: Services) -> list[Any]:
    """The image worker and the stream supervisor, sharing one detector; none if no model is present.

    Without a detector model the rest of the stack still runs: images wait in the queue until a
    worker with a model starts.
    """
    from infra.gpu_worker.http import HealthServer
    from infra.gpu_worker.stream_runner import StreamSupervisor
    from infra.gpu_worker.worker import GpuWorker
    from shared.vision.detector import load_detector

    try:
        detector = load_detector(services.settings)
    except ModelNotReady as exc:
        log.warning("image detection is off: %s", exc)
        return []
    worker = GpuWorker(services, detector)
    log.info("image detection on %s (%s)", detector.provider, detector.name)
    loops: list[Any] = [worker, StreamSupervisor(services, detector)]
    port = services.settings.local_gpu_metrics_port
    if port is not None:  # the GPU service's own /healthz and /metrics, as in the cloud
        loops.append(HealthServer(worker, services.settings.api_host, port))
    return loops
