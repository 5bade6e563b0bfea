"""Metrics of processes nobody scrapes: EMF lines on AWS, OTLP pushes on GCP — named as in Prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.config import Settings
from shared.metrics.export import Deltas, otlp_request
from shared.metrics.jobs import record_job
from shared.platform.runtime import FunctionRuntime, load_entry_settings
from tests.conftest import REPO
from tests.entry_fixtures import entry_environment, put_local, sample_jsonl


class OtlpReceiver:
    """An OTLP/HTTP metrics receiver on loopback: keeps each decoded request."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.requests.append(ExportMetricsServiceRequest.FromString(body))
                outer.headers.append(dict(self.headers.items()))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"

    def points(self, name: str) -> list[Any]:
        request = self.requests[-1]
        for metric in request.resource_metrics[0].scope_metrics[0].metrics:
            if metric.name == name:
                kind = metric.WhichOneof("data")
                return list(getattr(metric, str(kind)).data_points)
        return []


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def _labels(point: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def test_deltas_report_what_changed_since_the_last_invocation_and_every_gauge() -> None:
    # GIVEN a registry with a counter, a histogram and a gauge
    registry = CollectorRegistry()
    jobs = Counter("t_jobs", "jobs", ["kind"], registry=registry)
    seconds = Histogram("t_seconds", "time", buckets=(1.0,), registry=registry)
    depth = Gauge("t_depth", "depth", registry=registry)
    deltas = Deltas(registry)
    jobs.labels("embed").inc(3)
    seconds.observe(0.5)
    depth.set(7)
    # WHEN read twice, with one more job in between
    first = {(p.name, tuple(p.labels.items())): p.value for p in deltas.points()}
    jobs.labels("embed").inc()
    second = {(p.name, tuple(p.labels.items())): p.value for p in deltas.points()}
    # THEN the first read has everything; the second only the new job and the gauge
    assert first[("t_jobs_total", (("kind", "embed"),))] == 3
    assert first[("t_seconds_count", ())] == 1 and first[("t_seconds_sum", ())] == 0.5
    assert second == {("t_jobs_total", (("kind", "embed"),)): 1.0, ("t_depth", ()): 7.0}


def test_otlp_request_carries_cumulative_counters_and_per_bucket_histogram_counts() -> None:
    registry = CollectorRegistry()
    seconds = Histogram("t_latency_seconds", "latency", ["route"], buckets=(0.1, 1.0), registry=registry)
    for value in (0.05, 0.5, 0.7, 5.0):
        seconds.labels("/search").observe(value)
    request = otlp_request({"service.name": "contentfn-test"}, start_ns=1, registry=registry)
    (metric,) = request.resource_metrics[0].scope_metrics[0].metrics
    (point,) = metric.histogram.data_points
    # Prometheus buckets are cumulative (1, 3, 4); OTLP counts each bucket on its own.
    assert list(point.explicit_bounds) == [0.1, 1.0]
    assert list(point.bucket_counts) == [1, 2, 1]
    assert point.count == 4 and point.sum == pytest.approx(6.25)
    assert _labels(point) == {"route": "/search"}


def test_gcp_function_pushes_its_metrics_as_otlp_at_most_once_per_interval(otlp_receiver: OtlpReceiver) -> None:
    # GIVEN a GCP entry point configured with an OTLP endpoint
    settings = load_entry_settings(metrics_otlp_endpoint=otlp_receiver.url, metrics_push_interval_s=3600)
    runtime = FunctionRuntime("enrich", "gcp", settings=settings)

    @runtime.relaying
    def invocation() -> None:
        record_job("enrich", "done", 0.2)

    # WHEN it is invoked twice
    invocation()
    invocation()
    # THEN one push went out (the interval), cumulative, named as in Prometheus, with the service
    assert len(otlp_receiver.requests) == 1
    assert otlp_receiver.headers[0]["content-type"] == "application/x-protobuf"
    resource = {
        kv.key: kv.value.string_value for kv in otlp_receiver.requests[0].resource_metrics[0].resource.attributes
    }
    assert resource["service.name"] == "contentfn-enrich"
    done = [
        p for p in otlp_receiver.points("contentfn_jobs_total") if _labels(p) == {"kind": "enrich", "outcome": "done"}
    ]
    assert len(done) == 1 and done[0].as_double >= 1
    assert otlp_receiver.points("contentfn_job_duration_seconds")


def test_lambda_invocation_writes_its_metrics_as_emf_named_as_in_prometheus(entry_env: Settings) -> None:
    # GIVEN an uploaded track file and a fresh process, as Lambda runs one
    put_local(entry_env, "contentfn-dev-uploads", "incoming/Beyoncé tracks 2024.jsonl", sample_jsonl(20))
    cmd = [sys.executable, "-m", "local.invoke", "--fn", "ingest", "--event", "events/aws_sqs_s3_notification.json"]
    env = {**os.environ, **entry_environment(entry_env)}
    # WHEN the ingest function handles the S3 notification
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    emf = [d for d in (json.loads(line) for line in out.splitlines() if line.startswith('{"')) if "_aws" in d]
    # THEN the object and its rows are EMF metrics in the contentfn namespace, dimensioned by the
    # function and the Prometheus labels
    objects = [d for d in emf if "contentfn_ingest_objects_total" in d]
    assert objects, emf
    line = objects[-1]
    assert line["contentfn_ingest_objects_total"] == [1.0]
    assert (line["service"], line["object"], line["status"]) == ("ingest", "tracks", "ok")
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "contentfn"
    assert set(directive["Dimensions"][0]) >= {"service", "object", "status"}
    rows = [d for d in emf if "contentfn_ingest_rows_total" in d and d.get("outcome") == "ok"]
    assert rows and rows[-1]["contentfn_ingest_rows_total"] == [20.0]


def _invoke(settings: Settings, fn: str, event: str) -> list[dict[str, Any]]:
    """Run one entry point on one event in a fresh process, as Lambda does; its EMF lines."""
    cmd = [sys.executable, "-m", "local.invoke", "--fn", fn, "--event", event]
    env = {**os.environ, **entry_environment(settings)}
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_scheduled_drain_on_lambda_reports_the_outbox_dead_letters_and_budget_as_emf(
    entry_env: Settings, model_dir: Any
) -> None:
    # GIVEN 20 tracks ingested: embed, enrich and analyze jobs wait in the Postgres outbox
    put_local(entry_env, "contentfn-dev-uploads", "incoming/Beyoncé tracks 2024.jsonl", sample_jsonl(20))
    _invoke(entry_env, "ingest", "events/aws_s3_object_created.json")
    # WHEN the embed function's schedule fires and drains its own jobs
    lines = _invoke(entry_env, "embed", "events/aws_eventbridge_scheduler.json")
    # THEN the store's figures went out as EMF: the enrich jobs still wait, no dead letters, no budget used
    depth = {d["kind"]: d["contentfn_queue_depth"] for d in lines if "contentfn_queue_depth" in d}
    assert depth["embed"] == [0.0] and depth["enrich"] == [20.0]
    assert {d["kind"]: d["contentfn_dead_letters"] for d in lines if "contentfn_dead_letters" in d}["embed"] == [0.0]
    budget = [d for d in lines if "contentfn_llm_budget_used_ratio" in d]
    assert budget and budget[-1]["service"] == "embed" and budget[-1]["contentfn_llm_budget_used_ratio"] == [0.0]
