"""Observability, checked against a real Prometheus: after the local stack ingested a file, analysed
its tracks and detected an image, every dashboard panel and every alert rule has data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shared.config import Settings
from shared.vision.detector import default_model_path
from tests.conftest import need
from tests.obs_check import (
    ALERTS,
    DASHBOARD,
    alert_rules,
    alert_signal,
    dashboard_exprs,
    prometheus_binary,
    run_obs_check,
)

pytestmark = pytest.mark.slow


def test_every_dashboard_panel_and_alert_rule_has_data_in_a_real_prometheus(
    settings: Settings, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need(prometheus_binary() is not None, "the Debian package 'prometheus' is not installed")
    need(default_model_path() is not None, "the nudenet wheel (the local detector model) is not installed")
    # GIVEN a real Prometheus scraping the local API and the detection worker every second
    # WHEN the stack ingests a file, analyses tracks (a real LLM call) and detects a photo
    report = run_obs_check(settings, tmp_path / "obs")
    # THEN Prometheus saw at least 25 metric families of the product
    assert len(report.metric_families) >= 25, report.metric_families
    # AND every panel of the dashboard and the signal of every alert rule return data
    assert report.empty_panels == []
    assert report.panels_with_data == report.panels == len({t for t, _ in dashboard_exprs()})
    assert report.empty_alerts == []
    assert report.alerts_evaluated == len(alert_rules())
    # AND Prometheus evaluates every rule without error
    assert set(report.rule_health) == {r["alert"] for r in alert_rules()}
    assert set(report.rule_health.values()) == {"ok"}, report.rule_health
    with capsys.disabled():
        print("\n" + report.line())


def test_alert_rules_file_passes_promtool_and_every_rule_compares_a_signal_with_a_threshold() -> None:
    need(prometheus_binary() is not None, "the Debian package 'prometheus' (promtool) is not installed")
    # GIVEN the rules file beside the dashboard
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    # THEN promtool accepts it, and each rule has the form the acceptance check splits
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for rule in alert_rules():
        assert alert_signal(rule["expr"]).strip() != rule["expr"].strip()
        assert rule["annotations"]["summary"]


def test_dashboard_has_overview_pipeline_cost_and_gpu_rows_over_a_prometheus_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "Pipeline", "Cost", "GPU"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "${datasource}" and p["targets"] for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
