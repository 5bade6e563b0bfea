"""scripts/system-deps.sh, the set-up step of `make test`/`make demo`, run for real on this machine.

Nothing is removed from the machine: the script's own overrides name packages that exist and one
that cannot, and apt-get/sudo are replaced on PATH by recorders (installing here would change the
machine for everyone else on it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, need

SCRIPT = REPO / "scripts" / "system-deps.sh"
ABSENT = "contentfn-no-such-package"


@pytest.fixture
def recorders(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with an apt-get that records its arguments and succeeds, and a sudo that runs them."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir, log


def run(target: str, path_first: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    need(shutil.which("dpkg-query") is not None, "dpkg-query is not installed (a Debian-based system)")
    full = {k: v for k, v in os.environ.items() if not k.startswith("SYSTEM_DEPS_") and k != "CI"}
    if path_first is not None:
        full["PATH"] = f"{path_first}:{full['PATH']}"
    full.update(env)
    return subprocess.run([str(SCRIPT), target], env=full, capture_output=True, text=True, timeout=60)


def test_installed_packages_pass_with_one_dpkg_check_and_no_apt_call(recorders: tuple[Path, Path]) -> None:
    # GIVEN packages every Debian system has installed
    bin_dir, log = recorders
    # WHEN the script checks them
    done = run("test", bin_dir, SYSTEM_DEPS_PACKAGES="dpkg bash", SYSTEM_DEPS_TOOLS="")
    # THEN it passes silently and apt was never asked
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not log.exists()


def test_a_missing_package_that_may_not_be_installed_stops_with_its_name_and_the_install_command() -> None:
    # GIVEN a package that is not installed and a user that may not install (SYSTEM_DEPS_INSTALL=0)
    done = run("test", SYSTEM_DEPS_PACKAGES=f"dpkg {ABSENT}", SYSTEM_DEPS_TOOLS="", SYSTEM_DEPS_INSTALL="0")
    # THEN it stops with an error naming that package alone and the command that installs it
    assert done.returncode == 1
    assert "`make test` needs these system packages, which are missing:" in done.stderr
    assert f"\n  {ABSENT} " in done.stderr and "\n  dpkg " not in done.stderr
    assert f"apt-get update && {'' if os.geteuid() == 0 else 'sudo '}apt-get install -y {ABSENT}\n" in done.stderr


def test_a_missing_package_is_installed_with_apt_and_checked_again(recorders: tuple[Path, Path]) -> None:
    # GIVEN a missing package and a user allowed to install (root, or password-less sudo)
    bin_dir, log = recorders
    # WHEN the script runs and apt-get "succeeds" without installing anything
    done = run("demo", bin_dir, SYSTEM_DEPS_PACKAGES=f"bash {ABSENT}", SYSTEM_DEPS_TOOLS="")
    # THEN apt-get was asked to update and to install that package alone
    assert log.read_text().splitlines() == ["update -qq", f"install -y -qq {ABSENT}"]
    assert f"system-deps: installing {ABSENT}\n" == done.stdout
    # AND the package, still missing afterwards, stops the run before any test
    assert done.returncode == 1 and f"apt-get install -y {ABSENT}" in done.stderr


def test_a_missing_tool_warns_locally_and_fails_under_ci() -> None:
    # GIVEN a tool apt cannot install (as terraform) that is not on PATH
    tools = {"SYSTEM_DEPS_PACKAGES": "", "SYSTEM_DEPS_TOOLS": "contentfn-no-such-tool"}
    # WHEN checked locally, THEN a warning says its tests will skip, and the run goes on
    local = run("test", **tools)
    assert local.returncode == 0
    assert "contentfn-no-such-tool is not on PATH" in local.stderr and "will be skipped" in local.stderr
    # WHEN checked under CI, THEN it is an error
    ci = run("test", CI="true", **tools)
    assert ci.returncode == 1 and "required when CI=true" in ci.stderr


def test_the_make_targets_and_ci_run_the_script_before_the_tests() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target, deps in (("test", "test"), ("demo", "demo"), ("up", "demo")):
        assert f"\n{target}: system-deps-{deps} " in makefile
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci.index("scripts/system-deps.sh test") < ci.index("make test")
