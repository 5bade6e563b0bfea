"""The environments cover the function set and differ only where they should."""

from __future__ import annotations

import pytest

from tests.terraform import tftools


@pytest.mark.parametrize("cloud", tftools.CLOUDS)
@pytest.mark.parametrize("env_name", tftools.ENVS)
def test_every_function_folder_is_declared_in_the_env(cloud: str, env_name: str) -> None:
    # GIVEN the folders under functions/ WHEN reading the env's function map
    declared = set(
        tftools.load_hcl(tftools.TERRAFORM_DIR / "envs" / cloud / env_name / "terraform.tfvars")["functions"]
    )
    # THEN every folder has an entry (adding a function folder without an entry fails here)
    missing = tftools.function_names() - declared
    assert not missing, f"envs/{cloud}/{env_name} does not declare: {sorted(missing)}"
    assert {"ingest", "embed", "api", "scrape", "enrich", "analyze"} <= declared


@pytest.mark.parametrize("cloud", tftools.CLOUDS)
def test_dev_and_prod_share_one_root_module(cloud: str) -> None:
    dev = tftools.TERRAFORM_DIR / "envs" / cloud / "dev"
    prod = tftools.TERRAFORM_DIR / "envs" / cloud / "prod"
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (dev / name).read_text() == (prod / name).read_text(), (
            f"envs/{cloud}: {name} differs between dev and prod"
        )
    assert "dev" in (dev / "backend.tf").read_text() and "prod" in (prod / "backend.tf").read_text()


@pytest.mark.parametrize("cloud", tftools.CLOUDS)
def test_env_variables_match_the_platform_module(cloud: str) -> None:
    env_vars = tftools.load_hcl(tftools.TERRAFORM_DIR / "envs" / cloud / "dev" / "variables.tf")["variable"]
    platform_vars = tftools.load_hcl(tftools.TERRAFORM_DIR / "modules" / cloud / "platform" / "variables.tf")[
        "variable"
    ]
    assert {k for v in env_vars for k in v} == {k for v in platform_vars for k in v}


@pytest.mark.parametrize("cloud", tftools.CLOUDS)
def test_every_variable_is_typed_and_described(cloud: str) -> None:
    for path in (tftools.TERRAFORM_DIR / "modules" / cloud).glob("*/variables.tf"):
        for block in tftools.load_hcl(path).get("variable", []):
            for name, body in block.items():
                assert body.get("type"), f"{path}: variable {name} has no type"
                assert body.get("description"), f"{path}: variable {name} has no description"
