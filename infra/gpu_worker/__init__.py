"""The capped GPU inference service: image detection jobs from the queue, registered video streams."""

from infra.gpu_worker.metrics import WorkerMetrics
from infra.gpu_worker.worker import GpuWorker

__all__ = ["GpuWorker", "WorkerMetrics"]
