"""Fixtures of the Terraform tier: tools, a moto server on loopback, plans of the AWS envs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.terraform import tftools

# Test-only inputs: a fake Redis AUTH token (ElastiCache is planned, never created here).
FAKE_REDIS_TOKEN = "test-only-redis-auth-token"


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    path = shutil.which("terraform")
    tftools.require(path, "terraform is not on PATH")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def tf_env(tmp_path_factory: pytest.TempPathFactory, terraform_bin: str) -> dict[str, str]:
    """Environment for terraform: a CLI config using the on-disk AWS provider mirror, no prompts."""
    mirror = tftools.find_provider_mirror()
    tftools.require(mirror, "no filesystem mirror of the AWS provider (terraform-provider-aws*) was found")
    assert mirror is not None
    config = tftools.write_cli_config(tmp_path_factory.mktemp("tfcli"), mirror)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_"))}
    env.update(
        TF_CLI_CONFIG_FILE=str(config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on a free loopback port for the session; stopped afterwards."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        tftools.require(False, "moto[server] is not installed")
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto server did not start on {endpoint}")
            time.sleep(0.2)
    try:
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def prepare_aws_env(base: Path, env_name: str, moto: str, tf_env: dict[str, str], terraform_bin: str) -> Path:
    """Copy terraform/ under base, add the moto override to the env and init it."""
    tree = tftools.copy_terraform_tree(base)
    workdir = tree / "envs" / "aws" / env_name
    (workdir / "override.tf").write_text(tftools.moto_override(moto))
    tftools.run([terraform_bin, "init", "-input=false", "-no-color"], workdir, tf_env, timeout=120)
    return workdir


def plan_json(workdir: Path, tf_env: dict[str, str], terraform_bin: str, extra: list[str]) -> dict[str, Any]:
    tftools.run(
        [
            terraform_bin,
            "plan",
            "-input=false",
            "-no-color",
            "-lock=false",
            "-refresh=false",
            "-parallelism=20",
            f"-var=redis_auth_token={FAKE_REDIS_TOKEN}",
            "-out=plan.bin",
            *extra,
        ],
        workdir,
        tf_env,
        timeout=240,
    )
    shown = tftools.run([terraform_bin, "show", "-json", "plan.bin"], workdir, tf_env, timeout=120)
    return json.loads(shown.stdout)


@pytest.fixture(scope="session")
def aws_plan(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, tf_env: dict[str, str], terraform_bin: str
) -> Callable[..., dict[str, Any]]:
    """Plan of an AWS env (every create_* toggle on) as `terraform show -json`, cached per arguments.

    The plan runs against moto so data sources resolve without a cloud account; nothing is applied.
    """
    cache: dict[tuple[object, ...], dict[str, Any]] = {}

    def get(
        env_name: str, tfvars_edits: tuple[tuple[str, str], ...] = (), extra: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """tfvars_edits: (old, new) text replacements applied to the env's terraform.tfvars copy."""
        key = (env_name, tfvars_edits, extra)
        if key not in cache:
            base = tmp_path_factory.mktemp(f"plan-{env_name}")
            workdir = prepare_aws_env(base, env_name, moto_endpoint, tf_env, terraform_bin)
            tfvars = workdir / "terraform.tfvars"
            text = tfvars.read_text()
            for old, new in tfvars_edits:
                assert text.count(old) == 1, f"{old!r} must occur once in {env_name}/terraform.tfvars"
                text = text.replace(old, new)
            tfvars.write_text(text)
            cache[key] = plan_json(workdir, tf_env, terraform_bin, list(extra))
        return cache[key]

    return get
