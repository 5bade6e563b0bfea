"""Helpers for the Terraform test tier: locating tools, running terraform, reading HCL and plans.

Nothing here knows a machine path: the AWS provider mirror and checkov are found at run time, and
every working copy, CLI config and plan lives under a pytest tmp directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
FUNCTIONS_DIR = REPO_ROOT / "functions"
ENVS = ("dev", "prod")
CLOUDS = ("aws", "gcp")

# Services the AWS environments call; the test-only override points each at the moto server.
MOTO_ENDPOINTS = (
    "apigatewayv2",
    "appautoscaling",
    "autoscaling",
    "cloudwatch",
    "cloudwatchlogs",
    "ec2",
    "ecr",
    "ecs",
    "elasticache",
    "iam",
    "kms",
    "lambda",
    "rds",
    "s3",
    "scheduler",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "sts",
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require(condition: object, reason: str) -> None:
    """Skip locally when a tool is missing; in CI (CI=true) a missing tool is a failure."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


def function_names() -> set[str]:
    """The function set: every folder under functions/ (the source of truth for the envs)."""
    return {
        p.name for p in FUNCTIONS_DIR.iterdir() if p.is_dir() and p.name != "__pycache__" and not p.name.startswith(".")
    }


@cache
def find_provider_mirror() -> Path | None:
    """Root of a filesystem mirror holding the AWS provider (the folder containing registry.terraform.io)."""
    explicit = os.environ.get("TF_PROVIDER_MIRROR")
    candidates: list[Path] = [Path(explicit)] if explicit else []
    candidates.append(Path.home() / ".terraform.d" / "plugins")
    for root in candidates:
        if (root / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return root
    try:
        found = subprocess.run(
            [
                "find",
                "/",
                "-path",
                "/proc",
                "-prune",
                "-o",
                "-path",
                "/sys",
                "-prune",
                "-o",
                "-name",
                "terraform-provider-aws*",
                "-type",
                "f",
                "-print",
                "-quit",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    for parent in Path(found).parents if found else ():
        if parent.name == "registry.terraform.io":
            return parent.parent
    return None


def tool_next_to_python(name: str) -> str | None:
    """A console script of the running interpreter's environment, else one on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def write_cli_config(directory: Path, mirror: Path) -> Path:
    config = directory / "terraform.tfrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = {json.dumps(str(mirror))}\n    include = ["registry.terraform.io/hashicorp/*"]\n  }}\n'
        "}\n"
    )
    return config


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with the tail of its output."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout or ""
        tail = (output.decode(errors="replace") if isinstance(output, bytes) else output)[-4000:]
        pytest.fail(f"{' '.join(cmd)} timed out after {timeout}s in {cwd}\n{tail}")
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def copy_terraform_tree(destination: Path) -> Path:
    """A disposable copy of terraform/ (modules are referenced by relative path)."""
    target = destination / "terraform"
    shutil.copytree(
        TERRAFORM_DIR,
        target,
        ignore=shutil.ignore_patterns(
            ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.backup", "override.tf"
        ),
    )
    return target


def moto_override(endpoint: str) -> str:
    """Test-only override: local state, fake credentials, every endpoint on the moto server."""
    endpoints = "\n".join(f'    {name} = "{endpoint}"' for name in MOTO_ENDPOINTS)
    return f"""terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""


# ---------------------------------------------------------------------------------------------
# HCL (python-hcl2): newer versions keep quotes around strings and keys and mark blocks; this
# normalises both layouts to plain Python values.


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    return value


def normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {_unquote(k): normalise(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


def load_hcl(path: Path) -> dict[str, Any]:
    import hcl2

    with path.open() as handle:
        return normalise(hcl2.load(handle))


def load_hcl_dir(directory: Path) -> dict[str, list[Any]]:
    """Merge the top-level blocks of every .tf file of a module."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for key, blocks in load_hcl(path).items():
            merged.setdefault(key, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def hcl_resources(module: dict[str, list[Any]], kind: str = "resource") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource (or data source) of a merged module."""
    for block in module.get(kind, []):
        for rtype, named in block.items():
            for name, body in named.items():
                yield rtype, name, body


# ---------------------------------------------------------------------------------------------
# Plan JSON (terraform show -json)


def plan_resources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every planned managed resource with its address, type, known values and unknown markers."""
    changes = {rc["address"]: rc for rc in plan.get("resource_changes", [])}
    out: list[dict[str, Any]] = []

    def walk(module: dict[str, Any]) -> None:
        for res in module.get("resources", []):
            change = changes.get(res["address"], {}).get("change", {})
            out.append({**res, "after_unknown": change.get("after_unknown", {})})
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan["planned_values"]["root_module"])
    return out


def plan_policy_documents(plan: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Statements of every aws_iam_policy_document, read at plan time or deferred to apply."""
    docs: list[tuple[str, list[dict[str, Any]]]] = []

    def walk(module: dict[str, Any]) -> None:
        for res in module.get("resources", []):
            if res.get("type") == "aws_iam_policy_document" and res.get("mode") == "data":
                docs.append((res["address"], res.get("values", {}).get("statement") or []))
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan.get("prior_state", {}).get("values", {}).get("root_module", {}))
    seen = {address for address, _ in docs}
    for rc in plan.get("resource_changes", []):
        if rc.get("type") == "aws_iam_policy_document" and rc.get("mode") == "data" and rc["address"] not in seen:
            docs.append((rc["address"], (rc["change"].get("after") or {}).get("statement") or []))
    return docs
