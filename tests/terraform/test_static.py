"""Static checks of terraform/: formatting, validation of the AWS envs, checkov."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.terraform import tftools


def test_terraform_files_are_formatted(terraform_bin: str) -> None:
    proc = subprocess.run(
        [terraform_bin, "fmt", "-check", "-recursive", "-diff", "-no-color"],
        cwd=tftools.TERRAFORM_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"terraform fmt -check found unformatted files:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("env_name", tftools.ENVS)
def test_aws_env_initialises_without_backend_and_validates(
    env_name: str, tmp_path: Path, tf_env: dict[str, str], terraform_bin: str
) -> None:
    workdir = tftools.copy_terraform_tree(tmp_path) / "envs" / "aws" / env_name
    tftools.run([terraform_bin, "init", "-backend=false", "-input=false", "-no-color"], workdir, tf_env, timeout=120)
    proc = tftools.run([terraform_bin, "validate", "-json", "-no-color"], workdir, tf_env, timeout=120)
    result = json.loads(proc.stdout)
    assert result["valid"], result["diagnostics"]
    assert result["warning_count"] == 0, result["diagnostics"]


@pytest.mark.slow
def test_checkov_reports_no_failed_check() -> None:
    checkov = tftools.tool_next_to_python("checkov")
    tftools.require(checkov, "checkov is not installed next to the interpreter or on PATH")
    assert checkov is not None
    proc = subprocess.run(
        [
            checkov,
            "--directory",
            "terraform",
            "--framework",
            "terraform",
            "--config-file",
            "terraform/.checkov.yaml",
            "--output",
            "json",
            "--quiet",
            "--compact",
        ],
        cwd=tftools.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.stdout.strip(), f"checkov produced no report:\n{proc.stderr[-3000:]}"
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for report in reports
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports if "summary" in r)
    skipped = [c for report in reports for c in report.get("results", {}).get("skipped_checks", [])]
    for check in skipped:
        # Every skip carries its reason (in-line `#checkov:skip=ID:reason`).
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) >= 20, f"{check['check_id']} on {check['resource']} is skipped without a reason"
