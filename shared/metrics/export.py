"""The registry in the forms the clouds read, for processes nobody scrapes (functions):

- :class:`Deltas`: what each counter and histogram gained since the last call, and each gauge's
  value — the points an invocation reports as EMF on AWS (CloudWatch sums them per period).
- :func:`otlp_request`: the whole registry as an OTLP ``ExportMetricsServiceRequest`` with
  cumulative temporality, for Managed Prometheus / Cloud Monitoring's OTLP endpoint on GCP.
  Cumulative points make a skipped push lossless: the next one carries everything.

Both read the registry once per invocation at most, never on a request's path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from shared.metrics import REGISTRY

__all__ = ["Deltas", "Point", "otlp_request"]

_CUMULATIVE = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


@dataclass(frozen=True)
class Point:
    name: str  # the Prometheus sample name (``contentfn_jobs_total``, ``..._seconds_sum``)
    labels: Mapping[str, str]
    value: float
    unit: str  # count, seconds or none


class Deltas:
    """Changes since the previous :meth:`points` call; unchanged counters are left out."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self._last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()

    def points(self) -> list[Point]:
        found: list[Point] = []
        with self._lock:
            for family in self.registry.collect():
                for sample in family.samples:
                    if family.type == "histogram" and sample.name.endswith("_bucket"):
                        continue  # CloudWatch keeps sums and counts; quantiles come from the p95 panels locally
                    unit = _unit(family, sample.name)
                    if family.type == "gauge":
                        found.append(Point(sample.name, sample.labels, sample.value, unit))
                        continue
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    delta = sample.value - self._last.get(key, 0.0)
                    self._last[key] = sample.value
                    if delta > 0:
                        found.append(Point(sample.name, sample.labels, delta, unit))
        return found


def _unit(family: Metric, sample_name: str) -> str:
    if sample_name.endswith("_count"):
        return "count"
    if family.name.endswith("_seconds") or "_seconds_" in sample_name:
        return "seconds"
    return "none" if family.type == "gauge" or family.name.endswith("_usd") else "count"


def _attributes(labels: Mapping[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in sorted(labels.items())]


def otlp_request(
    resource: Mapping[str, str], *, start_ns: int, registry: CollectorRegistry = REGISTRY
) -> ExportMetricsServiceRequest:
    """Counters as cumulative monotonic sums since ``start_ns`` (the process start), gauges as
    gauges, histograms as explicit-bucket histograms (bucket counts per bucket, not cumulative)."""
    now = time.time_ns()
    metrics: list[metrics_pb2.Metric] = []
    for family in registry.collect():
        if family.type == "counter":
            points = [
                metrics_pb2.NumberDataPoint(
                    attributes=_attributes(s.labels),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now,
                    as_double=s.value,
                )
                for s in family.samples
                if s.name.endswith("_total")
            ]
            metric = metrics_pb2.Metric(
                name=family.name + "_total",
                description=family.documentation,
                sum=metrics_pb2.Sum(data_points=points, aggregation_temporality=_CUMULATIVE, is_monotonic=True),
            )
        elif family.type == "gauge":
            points = [
                metrics_pb2.NumberDataPoint(attributes=_attributes(s.labels), time_unix_nano=now, as_double=s.value)
                for s in family.samples
            ]
            metric = metrics_pb2.Metric(
                name=family.name, description=family.documentation, gauge=metrics_pb2.Gauge(data_points=points)
            )
        elif family.type == "histogram":
            metric = metrics_pb2.Metric(
                name=family.name,
                description=family.documentation,
                histogram=metrics_pb2.Histogram(
                    data_points=list(_histogram_points(family, start_ns, now)), aggregation_temporality=_CUMULATIVE
                ),
            )
        else:
            continue
        metrics.append(metric)
    return ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=Resource(attributes=_attributes(resource)),
                scope_metrics=[metrics_pb2.ScopeMetrics(metrics=metrics)],
            )
        ]
    )


@dataclass
class _Series:
    buckets: list[tuple[float, float]]  # (upper bound, cumulative count)
    sum: float = 0.0
    count: float = 0.0


def _histogram_points(family: Metric, start_ns: int, now: int) -> Iterator[metrics_pb2.HistogramDataPoint]:
    series: dict[tuple[tuple[str, str], ...], _Series] = {}
    for s in family.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        entry = series.setdefault(key, _Series([]))
        if s.name.endswith("_bucket"):
            entry.buckets.append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_sum"):
            entry.sum = s.value
        elif s.name.endswith("_count"):
            entry.count = s.value
    for key, entry in series.items():
        cumulative = sorted(entry.buckets)
        counts, previous = [], 0.0
        for _, c in cumulative:  # OTLP counts each bucket on its own; Prometheus's are cumulative
            counts.append(int(c - previous))
            previous = c
        yield metrics_pb2.HistogramDataPoint(
            attributes=_attributes(dict(key)),
            start_time_unix_nano=start_ns,
            time_unix_nano=now,
            count=int(entry.count),
            sum=entry.sum,
            bucket_counts=counts,
            explicit_bounds=[le for le, _ in cumulative if le != float("inf")],
        )
