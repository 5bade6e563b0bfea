"""Where a function's metrics go after an invocation: EMF lines on AWS (CloudWatch extracts them
from the function's log), an OTLP push on GCP (:mod:`shared.platform.metrics_gcp`, apart because it
needs Google's auth library, which the Lambda image leaves out). Called once per invocation by the
entry points; a failure is logged, never raised into the invocation's answer.
"""

from __future__ import annotations

import logging

from shared.metrics.export import Deltas

__all__ = ["EmfEmitter"]

log = logging.getLogger(__name__)

NAMESPACE = "contentfn"


class EmfEmitter:
    """Each invocation's changes as EMF: one line per series that changed, dimensioned by the
    function (``service``) and the series' labels, named as in Prometheus so the dashboards and
    alarms of both clouds name one metric alike."""

    def __init__(self, function: str, *, deltas: Deltas | None = None) -> None:
        self.function = function
        self.deltas = deltas or Deltas()

    def emit(self) -> int:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        units = {"count": MetricUnit.Count, "seconds": MetricUnit.Seconds, "none": MetricUnit.NoUnit}
        points = self.deltas.points()
        for point in points:
            with single_metric(
                name=point.name,
                unit=units[point.unit],
                value=point.value,
                namespace=NAMESPACE,
                default_dimensions={"service": self.function, **point.labels},
            ):
                pass  # the line is written when the context closes
        return len(points)
