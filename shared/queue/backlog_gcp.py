"""The GCP adapter of :mod:`shared.queue.backlog`: the Cloud Monitoring client that reads a
subscription's backlog. Imported only where a Pub/Sub backlog is configured."""

from __future__ import annotations

from typing import Any

from google.cloud import monitoring_v3

__all__ = ["metric_service_client"]


def metric_service_client() -> Any:
    """A Cloud Monitoring client with the process's default credentials."""
    return monitoring_v3.MetricServiceClient()
