"""Alert policies, the dashboard and metric collection of the GCP environments, read from the HCL
(no google provider can be had here). The PromQL they run is checked against the metric names the
Prometheus acceptance test proved (tests/e2e/test_observability_prometheus.py)."""

from __future__ import annotations

import re
from typing import Any

from tests.obs_check import alert_rules, dashboard_exprs
from tests.terraform import tftools

GCP = tftools.TERRAFORM_DIR / "modules" / "gcp"
METRIC = re.compile(r"\bcontentfn_[a-z_]+")


def _resources(module: str, rtype: str) -> dict[str, dict[str, Any]]:
    hcl = tftools.load_hcl_dir(GCP / module)
    return {n: body for t, n, body in tftools.hcl_resources(hcl) if t == rtype}


def _module_call(name: str) -> dict[str, Any]:
    hcl = tftools.load_hcl_dir(GCP / "platform")
    return next(body for block in hcl["module"] for n, body in block.items() if n == name)


def _proven_metrics() -> set[str]:
    """Metric names of the Grafana panels and Prometheus rules, each shown to have data."""
    exprs = [e for _, e in dashboard_exprs()] + [r["expr"] for r in alert_rules()]
    return {m for e in exprs for m in METRIC.findall(e)}


def _conditions(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["conditions"])


def test_every_alert_policy_notifies_the_channels_of_the_notification_channels_variable() -> None:
    policies = _resources("observability", "google_monitoring_alert_policy")
    assert set(policies) == {"dead_letters", "oldest_message", "function_errors", "llm_budget", "gpu_queue_lag"}
    for name, policy in policies.items():
        assert policy["notification_channels"] == "${var.notification_channels}", name
        assert policy["documentation"][0]["content"], name
    # AND the variable is threaded from each environment through the platform
    assert _module_call("observability")["notification_channels"] == "${var.notification_channels}"
    root = tftools.load_hcl_dir(tftools.TERRAFORM_DIR / "envs" / "gcp" / "root")
    platform = next(body for block in root["module"] for n, body in block.items() if n == "contentfn")
    assert platform["notification_channels"] == "${var.notification_channels}"


def test_alert_policies_cover_dead_letters_message_age_errors_budget_and_gpu_lag() -> None:
    policies = _resources("observability", "google_monitoring_alert_policy")

    def filters(name: str) -> list[str]:
        return [
            c["condition_threshold"][0]["filter"] for c in _conditions(policies[name]) if "condition_threshold" in c
        ]

    def promql(name: str) -> list[str]:
        return [
            c["condition_prometheus_query_language"][0]["query"]
            for c in _conditions(policies[name])
            if "condition_prometheus_query_language" in c
        ]

    assert "subscription/num_undelivered_messages" in filters("dead_letters")[0]
    assert "local.dead_filter" in filters("dead_letters")[0]
    assert promql("dead_letters") == ["sum by (kind) (contentfn_dead_letters) > 0"]
    assert "subscription/oldest_unacked_message_age" in filters("oldest_message")[0]
    assert 'metric.label.response_code_class = "5xx"' in filters("function_errors")[0]
    assert promql("llm_budget") == ["max(contentfn_llm_budget_used_ratio) >= ${local.t.llm_budget_ratio}"]
    assert promql("gpu_queue_lag") == ["max(contentfn_gpu_queue_lag_seconds) > ${local.t.gpu_queue_lag_s}"]
    # THEN every PromQL condition reads a metric proven to have data in a real Prometheus
    proven = _proven_metrics()
    for name in policies:
        for query in promql(name):
            assert set(METRIC.findall(query)) <= proven, query


def test_dashboard_tiles_query_only_metrics_proven_in_prometheus() -> None:
    hcl = tftools.load_hcl_dir(GCP / "observability")
    tiles = hcl["locals"][0]["promql_tiles"]
    proven = _proven_metrics()
    used = {m for _, query in tiles for m in METRIC.findall(query)}
    assert len(tiles) >= 15 and used <= proven, used - proven
    assert {"contentfn_llm_cost_usd_total", "contentfn_gpu_queue_lag_seconds", "contentfn_jobs_total"} <= used


def test_gpu_service_metrics_are_collected_by_the_managed_prometheus_sidecar() -> None:
    (service,) = _resources("gpu_service", "google_cloud_run_v2_service").values()
    containers = {c["name"]: c for c in service["template"][0]["containers"]}
    worker, collector = containers["gpu-worker"], containers["metrics-collector"]
    # GIVEN the worker serving /metrics on the container port, the sidecar's default target
    locals_ = tftools.load_hcl(GCP / "gpu_service" / "main.tf")["locals"][0]
    assert locals_["probe_environment"]["CONTENTFN_GPU_METRICS_PORT"] == "8080"
    assert worker["ports"][0]["container_port"] == 8080
    # THEN the collector runs beside it, starts first, and may write metrics
    assert (
        "cloud-run-gmp-sidecar"
        in tftools.load_hcl(GCP / "gpu_service" / "variables.tf")["variable"][-1]["metrics_collector_image"]["default"]
    )
    assert collector["image"] == "${var.metrics_collector_image}"
    assert worker["depends_on"] == ["metrics-collector"]
    writers = _resources("gpu_service", "google_project_iam_member")
    assert writers["metrics_writer"]["role"] == "roles/monitoring.metricWriter"


def test_functions_push_otlp_metrics_with_a_writer_role_when_an_endpoint_is_set() -> None:
    function = _module_call("function")
    assert "CONTENTFN_METRICS_OTLP_ENDPOINT = var.metrics_otlp_endpoint" in function["environment"]
    writers = _resources("platform", "google_project_iam_member")
    assert writers["metric_writer"]["role"] == "roles/monitoring.metricWriter"
    assert "var.metrics_otlp_endpoint != null" in writers["metric_writer"]["for_each"]
    variables = tftools.load_hcl(GCP / "platform" / "variables.tf")["variable"]
    endpoint = next(v["metrics_otlp_endpoint"] for v in variables if "metrics_otlp_endpoint" in v)
    assert endpoint["default"] == "https://telemetry.googleapis.com/v1/metrics"
