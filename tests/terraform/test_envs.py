"""The environments cover the function set and differ only where they should: state and values."""

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


ROOT_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf")


@pytest.mark.parametrize("cloud", tftools.CLOUDS)
def test_every_env_links_the_one_root_module_and_keeps_its_own_state_and_values(cloud: str) -> None:
    # GIVEN every env folder of the cloud (a new one, such as staging, is checked the same way)
    envs = tftools.TERRAFORM_DIR / "envs" / cloud
    root = envs / "root"
    env_dirs = sorted(p for p in envs.iterdir() if p.is_dir() and p.name != "root")
    assert {p.name for p in env_dirs} >= set(tftools.ENVS)
    for env in env_dirs:
        # THEN the root module files are links to envs/<cloud>/root (one copy, no drift) ...
        for name in ROOT_FILES:
            link = env / name
            assert link.is_symlink(), f"envs/{cloud}/{env.name}/{name} is not a link to ../root/{name}"
            assert link.resolve() == (root / name).resolve()
        # ... and the state location and the values are the env's own
        own = {p.name for p in env.iterdir() if not p.is_symlink()}
        assert own == {"backend.tf", "terraform.tfvars"}, f"envs/{cloud}/{env.name}: {sorted(own)}"
        assert f"contentfn/{cloud}/{env.name}" in (env / "backend.tf").read_text()
        assert tftools.load_hcl(env / "terraform.tfvars")["environment"] == env.name


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
