"""How many messages wait in a Pub/Sub subscription, from Cloud Monitoring.

Pub/Sub's own API does not report a subscription's backlog; Cloud Monitoring's
``pubsub.googleapis.com/subscription/num_undelivered_messages`` does, sampled every minute and
visible a few minutes after the sample. The figure therefore trails the truth by one to four
minutes: good enough to see a bulk load or a burst piling up (admission, index deferral, the GPU
worker's /metrics), not to count single messages. Each subscription is asked at most every
``cache_s`` seconds. The SDK lives in :mod:`shared.queue.backlog_gcp`, imported only by ``create``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

__all__ = ["METRIC", "SubscriptionBacklog", "validate_subscriptions"]

log = logging.getLogger(__name__)

METRIC = "pubsub.googleapis.com/subscription/num_undelivered_messages"
_SUBSCRIPTION = re.compile(r"^projects/([^/]+)/subscriptions/([^/]+)$")
_FULL_VIEW = 0  # ListTimeSeriesRequest.TimeSeriesView.FULL: the points, not only the series headers


def validate_subscriptions(backlogs: dict[str, str]) -> dict[str, str]:
    """Each value must be a subscription path; the error names the kind."""
    for kind, subscription in backlogs.items():
        if not kind or not isinstance(subscription, str) or not _SUBSCRIPTION.match(subscription):
            raise ValueError(f"the backlog of {kind!r} must be a Pub/Sub subscription (projects/P/subscriptions/S)")
    return dict(backlogs)


class SubscriptionBacklog:
    """``depth()``: the newest num_undelivered_messages sample of one subscription (0 when none)."""

    def __init__(
        self,
        client: Any,
        subscription: str,
        *,
        cache_s: float = 30.0,
        lookback_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        match = _SUBSCRIPTION.match(subscription)
        if match is None:
            raise ValueError(f"not a Pub/Sub subscription path: {subscription!r}")
        self.project, self.subscription_id = match.groups()
        self.subscription = subscription
        self._client = client
        self.cache_s, self.lookback_s = cache_s, lookback_s
        self._clock, self._wall = clock, wall
        self._cached: tuple[float, int] | None = None

    @classmethod
    def create(cls, subscription: str, **kw: Any) -> SubscriptionBacklog:
        from shared.queue.backlog_gcp import metric_service_client

        return cls(metric_service_client(), subscription, **kw)

    def depth(self, kind: str | None = None) -> int:
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < self.cache_s:
            return self._cached[1]
        end = int(self._wall())
        series = self._client.list_time_series(
            request={
                "name": f"projects/{self.project}",
                "filter": f'metric.type = "{METRIC}" AND resource.labels.subscription_id = "{self.subscription_id}"',
                "interval": {"end_time": {"seconds": end}, "start_time": {"seconds": end - int(self.lookback_s)}},
                "view": _FULL_VIEW,
            }
        )
        newest: tuple[float, int] | None = None
        for one in series:
            for point in one.points:
                at = point.interval.end_time.timestamp()
                if newest is None or at > newest[0]:
                    newest = (at, int(point.value.int64_value))
        value = newest[1] if newest else 0  # no sample in the look-back: nothing has waited lately
        self._cached = (now, value)
        return value
