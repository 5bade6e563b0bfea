"""Cold start hygiene: importing an entry module loads no heavy library it does not need yet.

Each module is imported in a fresh interpreter, as a cold function instance would."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.entry_fixtures import ENTRY_MODULES

# Loaded on first use only: SDK clients by the adapter that needs them, the model by the embedder.
LAZY = ["boto3", "google.cloud.storage", "google.cloud.pubsub_v1", "onnxruntime", "tokenizers", "torch", "pgserver"]
LOCAL_ONLY = ["starlette", "uvicorn", "local.server", "local.runtime"]
OTHER_CLOUD = {"aws": ["functions_framework", "flask"], "gcp": ["aws_lambda_powertools"]}


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_entry_module_import_loads_no_heavy_library_it_does_not_need(module: str) -> None:
    cloud = module.rsplit(".", 1)[-1]
    banned = LAZY + LOCAL_ONLY + OTHER_CLOUD[cloud]
    code = f"import sys, json; import {module}; print(json.dumps([m for m in {banned!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_entry_module_builds_nothing_at_import(module: str) -> None:
    # No database, no client, no model until the first event: importing must work with no config at all.
    code = f"import {module} as m; assert m.runtime._services is None; print('ok')"
    env = {"PATH": "/usr/bin:/bin", "CONTENTFN_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
