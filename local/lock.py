"""Hash-pinned requirement locks for the container images, and the licence check of what they install.

Each image installs its Python packages from one lock (``pip install --require-hashes``): every
distribution pinned to one version and the sha256 of the wheel built for the image's interpreter and
platform. ``python -m local.lock`` regenerates the locks from ``pyproject.toml``; it resolves with
``pip install --dry-run --report`` for the image's platform, which installs nothing and reads the
hashes PyPI publishes for each file.

The product is Apache-2.0: :func:`copyleft` tells, from a distribution's installed metadata and
licence files, whether it is GPL or AGPL (LGPL, which a dynamically linked library may use, is not).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["IMAGES", "ImageLock", "LockError", "copyleft", "lock_entries", "main", "required_names", "write_lock"]


class LockError(Exception):
    """A lock cannot be written or read as asked."""


@dataclass(frozen=True)
class ImageLock:
    """What one image installs: the project's core dependencies plus ``extras``, with ``replace``d
    requirements swapped and ``add`` appended, for CPython ``python`` (its full version, for markers)
    on x86_64 Linux with glibc ``2.<glibc>``."""

    name: str
    dockerfile: str  # relative to the repository root
    lock: str
    extras: tuple[str, ...]
    python: str
    glibc: int
    replace: Mapping[str, str] = field(default_factory=dict)
    add: tuple[str, ...] = ()

    @property
    def python_version(self) -> str:
        return ".".join(self.python.split(".")[:2])

    def marker_environment(self) -> dict[str, str]:
        return {
            "python_version": self.python_version,
            "python_full_version": self.python,
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "extra": "",
        }

    def platforms(self) -> list[str]:
        # pip matches --platform tags exactly: list every manylinux level the image's glibc runs.
        levels = [f"manylinux_2_{minor}_x86_64" for minor in range(self.glibc, 4, -1)]
        return [*levels, "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]


IMAGES: dict[str, ImageLock] = {
    # Ubuntu 24.04 (CUDA base): Python 3.12, glibc 2.39. The CPU onnxruntime the project declares is
    # replaced by the GPU build (same module); onnx lets the detector splice its uint8 input graph.
    "gpu": ImageLock(
        name="gpu",
        dockerfile="infra/gpu_worker/Dockerfile",
        lock="infra/gpu_worker/requirements.lock",
        extras=("aws", "gcp"),
        python="3.12.3",
        glibc=39,
        replace={"onnxruntime": "onnxruntime-gpu>=1.20"},
        add=("onnx>=1.16",),
    ),
    # The AWS Lambda Python 3.12 base (Amazon Linux 2023: glibc 2.34). The 3.11 base is Amazon Linux
    # 2 (glibc 2.26), for which onnxruntime and opencv publish no current wheels.
    "functions": ImageLock(
        name="functions",
        dockerfile="infra/Dockerfile.functions",
        lock="infra/requirements.functions.lock",
        extras=("aws",),
        python="3.12.12",
        glibc=34,
    ),
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_requirements(image: ImageLock, pyproject: Path) -> list[str]:
    """The requirement lines the image resolves: pyproject's core plus the image's extras."""
    from packaging.requirements import Requirement

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    missing = sorted(set(image.extras) - optional.keys())
    if missing:
        raise LockError(f"pyproject.toml has no optional dependency group {', '.join(missing)}")
    lines = [*project["dependencies"], *(r for extra in image.extras for r in optional[extra])]
    out: list[str] = []
    for line in lines:
        name = _normalise(Requirement(line).name)
        replacement = image.replace.get(name)
        out.append(replacement if replacement is not None else line)
    return [*out, *image.add]


def required_names(image: ImageLock, pyproject: Path) -> set[str]:
    """Every distribution the image's requirements pull in, read from the installed metadata with
    markers evaluated for the image (a distribution not installed here adds only its own name)."""
    from packaging.requirements import Requirement

    env = image.marker_environment()
    seen: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = []
    for line in image_requirements(image, pyproject):
        req = Requirement(line)
        todo.append((req.name, frozenset(req.extras)))
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = (_normalise(name), extras)
        if key in done:
            continue
        done.add(key)
        seen.add(key[0])
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            wanted = req.marker is None or any(req.marker.evaluate({**env, "extra": extra}) for extra in (*extras, ""))
            if wanted:
                todo.append((req.name, frozenset(req.extras)))
    return seen


_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$")


def lock_entries(lock: Path) -> dict[str, str]:
    """Name (normalised) → pinned version of every entry; each entry must carry a sha256 hash."""
    text = re.sub(r"\\\n\s*", " ", lock.read_text(encoding="utf-8"))
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENTRY.match(stripped)
        if match is None:
            raise LockError(f"{lock.name}: entry {number} is not `name==version --hash=sha256:...`")
        entries[_normalise(match.group(1))] = match.group(2)
    return entries


def _resolve(image: ImageLock, requirements: list[str]) -> list[tuple[str, str, str]]:
    """(name, version, sha256) of each wheel pip would install for the image's platform."""
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.in"
        reqs.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        report = Path(tmp) / "report.json"
        # --isolated: this machine's pip configuration (extra indexes, local wheels) stays out of a lock.
        cmd = [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed", "--quiet"]
        cmd += ["--only-binary=:all:", "--implementation", "cp", "--python-version", image.python_version]
        cmd += ["--abi", f"cp{image.python_version.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
        for platform in image.platforms():
            cmd += ["--platform", platform]
        cmd += ["--target", str(Path(tmp) / "target"), "--report", str(report), "-r", str(reqs)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LockError(f"pip could not resolve the {image.name} image: {done.stderr.strip()[-2000:]}")
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    out = []
    for item in installs:
        hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
        if "sha256" not in hashes:
            raise LockError(f"no sha256 published for {item['download_info']['url']}")
        out.append((item["metadata"]["name"], item["metadata"]["version"], hashes["sha256"]))
    return sorted(out, key=lambda entry: _normalise(entry[0]))


def write_lock(image: ImageLock, repo: Path) -> Path:
    requirements = image_requirements(image, repo / "pyproject.toml")
    header = [
        f"# The {image.name} image's Python packages ({image.dockerfile}): CPython {image.python_version},",
        f"# x86_64, glibc 2.{image.glibc}. Generated by `python -m local.lock {image.name}` from pyproject.toml",
        f"# (core + {', '.join(image.extras)}); do not edit by hand.",
    ]
    lines = [
        f"{_normalise(name)}=={version} \\\n    --hash=sha256:{sha}"
        for name, version, sha in _resolve(image, requirements)
    ]
    path = repo / image.lock
    path.write_text("\n".join([*header, *lines]) + "\n", encoding="utf-8")
    return path


# GPL or AGPL, not LGPL: SPDX ids and the names used in classifiers and licence texts.
_SPDX_COPYLEFT = re.compile(r"^(A?GPL)-\d", re.IGNORECASE)
_NAMED_COPYLEFT = re.compile(r"(?<![\w-])(A?GPL(v?\d|\b))|GNU (Affero )?General Public License", re.IGNORECASE)
_FILE_HEADER = re.compile(r"^\s*GNU (AFFERO )?GENERAL PUBLIC LICENSE\b")


def _spdx_copyleft(expression: str) -> bool:
    """True when every alternative (``OR``) of an SPDX expression includes GPL or AGPL."""
    alternatives = re.split(r"\s+OR\s+", expression.replace("(", " ").replace(")", " "))
    return all(
        any(_SPDX_COPYLEFT.match(token) for token in re.split(r"\s+(?:AND|WITH)\s+|\s+", alt.strip()) if token)
        for alt in alternatives
    )


def _licence_files(dist: importlib.metadata.Distribution) -> Iterable[tuple[str, str]]:
    for name in dist.metadata.get_all("License-File") or []:
        for candidate in (name, f"licenses/{name}"):
            text = dist.read_text(candidate)
            if text is not None:
                yield name, text
                break


def _field(meta: importlib.metadata.PackageMetadata, name: str) -> str | None:
    values = meta.get_all(name) or []
    return str(values[0]) if values else None


def copyleft(name: str) -> str | None:
    """Why the installed distribution ``name`` is GPL or AGPL, or None. Its metadata (SPDX
    expression, else the licence field and classifiers) and the header of each licence file it ships
    are read: a package may declare MIT and ship the AGPL text."""
    dist = importlib.metadata.distribution(name)
    meta = dist.metadata
    expression = _field(meta, "License-Expression")
    if expression:
        if _spdx_copyleft(expression):
            return f"License-Expression: {expression}"
    else:
        declared = (_field(meta, "License") or "").strip().splitlines()
        first = declared[0][:200] if declared else ""
        classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
        named = [c for c in classifiers if _NAMED_COPYLEFT.search(c) and "Lesser" not in c and "Library" not in c]
        if first and _NAMED_COPYLEFT.search(first) and not re.search(r"\bL(esser )?GPL|Lesser|Library", first):
            return f"License: {first}"
        if named and len(named) == len(classifiers):
            return f"Classifier: {named[0]}"
    for file_name, text in _licence_files(dist):
        head = "\n".join(line for line in text.splitlines()[:5] if line.strip())
        if _FILE_HEADER.search(head):
            return f"licence file {file_name}: {head.strip().splitlines()[0].strip()}"
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m local.lock [IMAGE ...]``: regenerate the named locks (default: all)."""
    names = (argv if argv is not None else sys.argv[1:]) or sorted(IMAGES)
    unknown = sorted(set(names) - IMAGES.keys())
    if unknown:
        print(f"unknown image(s): {', '.join(unknown)}; known: {', '.join(sorted(IMAGES))}", file=sys.stderr)
        return 2
    repo = Path(__file__).resolve().parent.parent
    for name in names:
        path = write_lock(IMAGES[name], repo)
        print(f"{name}: {len(lock_entries(path))} pinned -> {path.relative_to(repo)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
