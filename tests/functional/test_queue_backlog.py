"""Pub/Sub backlog from Cloud Monitoring, checked at the client boundary: the request is built into
the SDK's real ListTimeSeriesRequest and the answer is made of real TimeSeries objects (no Cloud
Monitoring emulator exists)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.cloud import monitoring_v3

from shared.queue.backlog import METRIC, SubscriptionBacklog, validate_subscriptions
from tests.fake_clock import FakeClock

SUB = "projects/acme-dev/subscriptions/contentfn-dev-detect"
T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def point(minutes: int, value: int) -> monitoring_v3.Point:
    at = T0 + dt.timedelta(minutes=minutes)
    return monitoring_v3.Point(
        interval=monitoring_v3.TimeInterval(start_time=at, end_time=at),
        value=monitoring_v3.TypedValue(int64_value=value),
    )


class FakeMetrics:
    """MetricServiceClient.list_time_series: validates the request as the SDK would, answers series."""

    def __init__(self, series: list[monitoring_v3.TimeSeries]) -> None:
        self.series = series
        self.requests: list[monitoring_v3.ListTimeSeriesRequest] = []

    def list_time_series(self, request: dict[str, Any]) -> list[monitoring_v3.TimeSeries]:
        self.requests.append(monitoring_v3.ListTimeSeriesRequest(request))
        return self.series


def test_the_newest_sample_of_the_subscription_is_its_depth() -> None:
    # GIVEN Cloud Monitoring holding three samples of the subscription's backlog, newest first
    series = monitoring_v3.TimeSeries(points=[point(3, 1250), point(2, 900), point(1, 40)])
    client = FakeMetrics([series])
    backlog = SubscriptionBacklog(client, SUB, wall=lambda: T0.timestamp() + 300)
    # WHEN asked THEN it answers the newest
    assert backlog.depth() == 1250
    # AND it asked for that metric of that subscription, in its project, over the look-back window
    (request,) = client.requests
    assert request.name == "projects/acme-dev"
    assert f'metric.type = "{METRIC}"' in request.filter
    assert 'resource.labels.subscription_id = "contentfn-dev-detect"' in request.filter
    assert request.view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL
    span = request.interval.end_time.timestamp() - request.interval.start_time.timestamp()
    assert span == 600


def test_answers_are_cached_and_no_sample_means_nothing_waits() -> None:
    clock = FakeClock()
    client = FakeMetrics([])
    backlog = SubscriptionBacklog(client, SUB, cache_s=30, clock=clock)
    assert backlog.depth() == 0  # no sample in the last ten minutes
    clock.now += 10
    client.series = [monitoring_v3.TimeSeries(points=[point(0, 7)])]
    assert backlog.depth() == 0 and len(client.requests) == 1  # cached
    clock.now += 25
    assert backlog.depth() == 7 and len(client.requests) == 2


def test_only_subscription_paths_are_accepted() -> None:
    assert validate_subscriptions({"detect": SUB}) == {"detect": SUB}
    with pytest.raises(ValueError, match="'detect'"):
        validate_subscriptions({"detect": "projects/acme-dev/topics/contentfn-dev-detect"})
    with pytest.raises(ValueError):
        SubscriptionBacklog(FakeMetrics([]), "contentfn-dev-detect")
