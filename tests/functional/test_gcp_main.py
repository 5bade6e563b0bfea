"""The GCP source archive's main.py dispatches to each function's entry point with the right signature."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

FUNCTIONS = sorted(p.name for p in (REPO / "functions").iterdir() if (p / "gcp.py").is_file())

_PROBE = """
import importlib, os
import main
from functions_framework import _function_registry as r
fn = os.environ["CONTENTFN_FUNCTION"]
exported = getattr(importlib.import_module(f"functions.{fn}.gcp"), fn)
print(r.REGISTRY_MAP.get("handler"), main._target is exported, r.REGISTRY_MAP.get(fn))
"""


def test_every_function_with_a_gcp_entry_point_is_dispatched_by_main() -> None:
    import ast

    tree = ast.parse((REPO / "main.py").read_text())
    targets = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "TARGETS"
    )
    declared = sorted(k.value for k in targets.keys)  # type: ignore[union-attr]
    assert declared == FUNCTIONS


@pytest.mark.parametrize("function", FUNCTIONS)
def test_main_handler_is_the_functions_target_with_its_signature(function: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=REPO,
        env={"CONTENTFN_FUNCTION": function, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    expected_signature = "cloudevent" if function == "ingest" else "http"
    # main.handler wraps the function's own target, registered with the same signature type
    assert out == [expected_signature, "True", expected_signature]


def test_main_refuses_an_unknown_function_naming_the_variable() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import main"],
        cwd=Path(REPO),
        env={"CONTENTFN_FUNCTION": "nope", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "CONTENTFN_FUNCTION must be one of" in proc.stderr
