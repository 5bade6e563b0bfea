"""Observability against a real Prometheus: the local stack ingests a file, analyses its tracks and
detects a photo while Prometheus scrapes it; then every dashboard panel and alert rule is evaluated.

Prints what had no data, then the machine-readable last line
``obs metric_families= panels= panels_with_data= alerts_evaluated=``; exits 1 when any panel or
alert had no data or fewer than 25 metric families were seen.
"""

from __future__ import annotations

import argparse
import sys

from tests.bench._common import BenchDatabase, bench_settings, console, require_model, temp_workdir
from tests.obs_check import prometheus_binary, run_obs_check

MIN_FAMILIES = 25


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    require_model()
    if prometheus_binary() is None:
        raise SystemExit("prometheus is not installed: make system-deps-test")
    with temp_workdir("bench-obs-") as work, BenchDatabase(work) as bench:
        settings = bench_settings(work / "state", bench.fresh("obs"))
        report = run_obs_check(settings, work / "prometheus")
    for line in (*report.empty_panels, *report.empty_alerts):
        console.print(f"[red]no data[/red] {line}")
    for name, health in sorted(report.rule_health.items()):
        if health != "ok":
            console.print(f"[red]rule {name}: {health}[/red]")
    print(f"families: {' '.join(report.metric_families)}")
    print(report.line())
    ok = (
        len(report.metric_families) >= MIN_FAMILIES
        and report.panels_with_data == report.panels
        and not report.empty_alerts
        and set(report.rule_health.values()) <= {"ok"}
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
