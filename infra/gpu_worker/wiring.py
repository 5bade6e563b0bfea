"""What a GPU service process is wired to: the queue it consumes, the object store it reads images
from, its services; and that queue's depth and lag for ``/metrics``.

Chosen from the process's settings (``CONTENTFN_GPU_QUEUE``, ``CONTENTFN_BLOB_BACKEND``), which
Terraform sets per cloud; unset, the local runtime's Postgres jobs table and bucket folder.
"""

from __future__ import annotations

from shared.blob.base import Blob
from shared.blob.local import LocalBlob
from shared.config import Settings
from shared.errors import ConfigError
from shared.platform.runtime import Cloud, EntrySettings, build_blob
from shared.queue.base import JobSource
from shared.queue.postgres import PgQueue
from shared.services import Services
from shared.vision.capacity import queue_lag_s
from shared.vision.store import DETECT_JOB

__all__ = ["detect_queue", "object_store", "queue_figures", "worker_services"]


def queue_figures(services: Services, queue: JobSource, kind: str) -> tuple[int, float]:
    """(depth, lag in seconds) of the detection queue; lag -1 when unknown (SQS and Pub/Sub report
    the age of their oldest message only to CloudWatch / Cloud Monitoring)."""
    lag = -1.0
    if isinstance(queue, PgQueue):
        with services.db.connection() as conn:
            lag = queue_lag_s(conn, kind)
            conn.commit()
    return queue.depth(kind), lag


def _queue_cloud(name: str | None) -> Cloud | None:
    """The cloud of ``CONTENTFN_GPU_QUEUE``: an SQS queue URL (aws), a Pub/Sub subscription (gcp),
    unset (local: the Postgres jobs table); None for anything else."""
    if not name:
        return "local"
    if name.startswith(("https://", "http://")):
        return "aws"
    if name.startswith("projects/") and "/subscriptions/" in name:
        return "gcp"
    return None


def object_store(settings: Settings) -> Blob:
    """Where the service reads uploaded images from: ``CONTENTFN_BLOB_BACKEND`` (Terraform sets it),
    else the store of the cloud whose queue ``CONTENTFN_GPU_QUEUE`` names (S3 beside SQS, Cloud
    Storage beside Pub/Sub), else the local bucket folder."""
    if not isinstance(settings, EntrySettings):  # no cloud knobs: an in-process worker's own settings
        return LocalBlob(settings.buckets_dir)
    return build_blob(settings, _queue_cloud(settings.gpu_queue) or "local")


def worker_services(settings: Settings, *, migrate: bool) -> Services:
    """The GPU service's services: its database, cache and the object store it reads images from."""
    return Services.from_settings(settings, migrate=migrate, blob=object_store(settings))


def detect_queue(settings: Settings) -> JobSource | None:
    """The queue named by ``CONTENTFN_GPU_QUEUE``: an SQS queue URL or a Pub/Sub subscription
    (``projects/P/subscriptions/S``); unset means the Postgres jobs table (``None``)."""
    name, cloud = settings.gpu_queue, _queue_cloud(settings.gpu_queue)
    if not name:
        return None
    visibility_s, base_s, cap_s = (
        settings.queue_visibility_s,
        settings.queue_backoff_base_s,
        settings.queue_backoff_cap_s,
    )
    if cloud == "aws":
        from shared.queue.sqs import SqsQueue

        return SqsQueue.create(
            name,
            kind=DETECT_JOB,
            wait_s=1,
            visibility_s=visibility_s,
            backoff_base_s=base_s,
            backoff_cap_s=cap_s,
            endpoint_url=settings.aws_endpoint_url,
            region=settings.aws_region,
        )
    if cloud == "gcp":
        from shared.queue.pubsub import PubSubPublisher, PubSubPullQueue

        # The topic the service relays detect jobs to feeds this subscription: a released job is
        # published there again, so a release spends no delivery attempt (shared.queue.pubsub).
        topic = settings.queues.get(DETECT_JOB) if isinstance(settings, EntrySettings) else None
        republish = PubSubPublisher.create(topic) if topic and topic.startswith("projects/") else None
        return PubSubPullQueue.create(
            name,
            kind=DETECT_JOB,
            visibility_s=visibility_s,
            backoff_base_s=base_s,
            backoff_cap_s=cap_s,
            republish=republish,
            max_attempts=settings.queue_max_attempts,
        )
    raise ConfigError(
        "CONTENTFN_GPU_QUEUE: neither an SQS queue URL nor a Pub/Sub subscription (projects/P/subscriptions/S)"
    )
