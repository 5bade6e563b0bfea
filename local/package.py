"""The GCP source archive: the zip Cloud Run functions build every contentfn function from.

Cloud Run functions (gen2) build a function from a zip in a bucket: the Python buildpack installs
the archive's ``requirements.txt`` and functions-framework serves ``main.handler`` from its root
(``/workspace``). One archive serves every function; Terraform sets ``CONTENTFN_FUNCTION`` per
function (``main.py``). The archive holds:

- the code: ``main.py``, ``shared/`` and ``functions/``;
- the embedding model (manifest, tokenizer and one variant), at the path the settings use when
  ``CONTENTFN_MODEL_DIR`` is unset, relative to the working directory;
- ``requirements.txt``: the ``pyproject.toml`` dependencies (core and ``gcp``) whose packages the
  archived code imports or reads data from, with their version ranges. Every other third-party
  module the code uses must come from one of those (or be declared for another target, such as the
  AWS adapters or the model build); otherwise building the archive fails and names the module.

The zip is deterministic (sorted members, fixed timestamps), so the same sources give the same
bytes and the same name (``functions-<sha256 prefix>.zip``): Terraform redeploys only on a change.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shared.config import Settings
from shared.embedder.manifest import MANIFEST_NAME, Manifest, sha256_file
from shared.errors import ContentfnError

__all__ = [
    "GCP_SOURCE_LIMIT_BYTES",
    "LOCAL_ONLY",
    "PackagingError",
    "SourceArchive",
    "build_gcp_source",
    "reachable_files",
    "runtime_requirements",
    "unprovided",
    "used_modules",
]

CODE = ("main.py", "shared", "functions")
FIRST_PARTY = frozenset({"main", "shared", "functions", "local", "infra"})
# Declared in the core dependencies for the local runtime, imported by the archived code only on a
# path a cloud function never takes.
LOCAL_ONLY = {"pgserver": "the embedded database: a cloud function is given CONTENTFN_DATABASE_URL"}
# Optional dependency groups that are tools, not a target the code may rely on at run time.
TOOLING = ("dev",)
# Cloud Run functions refuse source archives over 100 MB (compressed).
GCP_SOURCE_LIMIT_BYTES = 100 * 1000 * 1000
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


class PackagingError(ContentfnError):
    """The archive cannot be built as asked (missing model, undeclared import, too large)."""


@dataclass(frozen=True)
class SourceArchive:
    path: Path
    bytes: int
    sha256: str
    members: int
    requirements: tuple[str, ...]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise PackagingError(f"pyproject.toml: cannot read the requirement {requirement!r}")
    return _normalise(match.group(1))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_names(tree: ast.AST) -> Iterator[str]:
    """Modules a file imports (outside ``if TYPE_CHECKING:``), as dotted names (``from a.b import c``
    gives ``a.b`` and ``a.b.c``, which may be a module or a name in ``a.b``), and packages it reads
    data from (``resources.files("pkg")``)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            named = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if named == "files" and node.args and isinstance(node.args[0], ast.Constant):
                value = node.args[0].value
                if isinstance(value, str) and all(part.isidentifier() for part in value.split(".")):
                    yield value
        stack.extend(ast.iter_child_nodes(node))


def _code_files(repo: Path) -> list[Path]:
    files: list[Path] = []
    for name in CODE:
        top = repo / name
        if top.is_file():
            files.append(top)
            continue
        if not top.is_dir():
            raise PackagingError(f"{top} is missing: build the archive from a contentfn checkout")
        files.extend(
            p
            for p in top.rglob("*")
            if p.is_file() and not _SKIP_PARTS.intersection(p.relative_to(repo).parts) and p.suffix != ".pyc"
        )
    return sorted(files)


def _imports(files: Iterable[Path], *, root: Path) -> list[tuple[str, str]]:
    """(file relative to ``root``, module it uses) for every Python file, each parsed once."""
    return [
        (path.relative_to(root).as_posix(), name)
        for path in files
        if path.suffix == ".py"
        for name in _module_names(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    ]


def _third_party(imports: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for where, name in imports:
        top = name.split(".")[0]
        if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
            used.setdefault(name, set()).add(where)
    return used


def used_modules(files: Iterable[Path], *, root: Path) -> dict[str, set[str]]:
    """Third-party module (dotted) → the files (relative to ``root``) that use it; stdlib and
    first-party modules are left out."""
    return _third_party(_imports(files, root=root))


def _first_party_targets(tree: ast.AST, path: Path, root: Path) -> Iterator[Path]:
    """Files of this repository a file imports, at module level or inside functions (absolute and
    relative imports; ``from pkg import name`` tries ``pkg/name.py`` as well as ``pkg``)."""
    package = path.parent.relative_to(root).parts
    for node in ast.walk(tree):
        dotted: list[tuple[str, ...]] = []
        if isinstance(node, ast.Import):
            dotted = [tuple(a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = tuple(node.module.split(".")) if node.module else ()
            if node.level:
                base = package[: len(package) - (node.level - 1)] + base
            dotted = [base, *((*base, a.name) for a in node.names)]
        for parts in dotted:
            if not parts or parts[0] not in FIRST_PARTY:
                continue
            for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    yield candidate
            # a package's __init__ runs whenever a module inside it is imported
            for depth in range(1, len(parts)):
                init = root.joinpath(*parts[:depth], "__init__.py")
                if init.is_file():
                    yield init


def reachable_files(entry: Path, *, root: Path) -> list[Path]:
    """The repository's Python files ``entry`` can import, directly or through others, including
    imports inside functions (an adapter picked at run time is reachable)."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        todo.extend(t for t in _first_party_targets(tree, path, root) if t not in seen)
    return sorted(seen)


_EXTENSION = re.compile(r"\.(cpython-[^.]+|abi3)?\.?(so|pyd)$")


@functools.cache
def _module_index() -> dict[str, frozenset[str]]:
    """Every module (dotted) the installed distributions ship → those distributions (normalised
    names), read from their file lists; namespace packages (``google``) from their top-level names."""
    index: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        name = _normalise(dist.metadata["Name"] or "")
        for file in dist.files or ():
            parts = PurePosixPath(str(file)).parts
            if not parts or parts[0].endswith((".dist-info", ".data")) or ".." in parts:
                continue
            stem = parts[-1]
            if stem.endswith(".py"):
                stem = stem[:-3]
            elif _EXTENSION.search(stem):
                stem = _EXTENSION.sub("", stem).split(".")[0]
            else:
                continue
            dotted = [*parts[:-1]] if stem == "__init__" else [*parts[:-1], stem]
            for depth in range(1, len(dotted) + 1):  # a package's parents are shipped by it too
                index.setdefault(".".join(dotted[:depth]), set()).add(name)
    for top, dists in importlib.metadata.packages_distributions().items():
        index.setdefault(top, set()).update(_normalise(d) for d in dists)
    return {module: frozenset(dists) for module, dists in index.items()}


def _providers(module: str) -> frozenset[str]:
    """The distributions that ship ``module``: its longest dotted prefix that is a module (the rest
    names something inside it: ``pydantic.BaseModel`` is shipped with ``pydantic``)."""
    index = _module_index()
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        found = index.get(".".join(parts[:depth]))
        if found:
            return found
    return frozenset()


def _closure(names: Iterable[str]) -> set[str]:
    """The distributions and everything they require (markers other than extras are kept)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo.extend(_requirement_name(r) for r in requires if "extra ==" not in r.replace("'", '"'))
    return seen


def _dependencies(pyproject: Path, extras: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The core and ``extras`` requirement lines of ``pyproject.toml``, and every optional group."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - optional.keys())
    if unknown:
        raise PackagingError(f"pyproject.toml has no optional dependency group {', '.join(unknown)}")
    return [*project["dependencies"], *(r for extra in extras for r in optional[extra])], optional


def runtime_requirements(
    pyproject: Path, used: dict[str, set[str]], *, extras: tuple[str, ...] = ("gcp",)
) -> list[str]:
    """The requirement lines (from ``pyproject.toml``) the archived code needs, in their order there.

    A core or ``extras`` dependency is kept when its package provides a module the code uses. Each
    used module must then be provided by a kept dependency or by what those require, or be declared
    for another target in ``pyproject.toml`` (another extra but ``dev``, or ``LOCAL_ONLY``): else the archive would
    install without it, and the error names the module and the files that use it.
    """
    candidates, optional = _dependencies(pyproject, extras)
    wanted = {dist for module in used for dist in _providers(module)}
    kept = [r.strip() for r in candidates if _requirement_name(r) not in LOCAL_ONLY and _requirement_name(r) in wanted]

    available = _closure(_requirement_name(r) for r in kept)
    # Declared for another target (the AWS adapters, the model build, the GPU worker); ``dev``, the
    # test tooling, does not count.
    other = [r for extra, group in optional.items() if extra not in (*extras, *TOOLING) for r in group]
    elsewhere = _closure([*(_requirement_name(r) for r in other), *LOCAL_ONLY])
    for module in sorted(used):
        dists = _providers(module)
        if dists & available or dists & elsewhere:
            continue
        where = ", ".join(sorted(used[module]))
        if not dists:
            raise PackagingError(f"the archived code imports {module!r} ({where}), which no installed package provides")
        raise PackagingError(
            f"the archived code imports {module!r} ({where}) from {', '.join(sorted(dists))}, "
            "which is not among pyproject.toml's runtime dependencies"
        )
    return kept


def unprovided(
    pyproject: Path, used: dict[str, set[str]], *, extras: Iterable[str] = (), also: Iterable[str] = ()
) -> dict[str, set[str]]:
    """The used modules that an install of the project with ``extras`` (plus the packages named in
    ``also``) would not provide, with the files that use them: what an image would fail to import."""
    names, _ = _dependencies(pyproject, extras)
    installed = _closure(_requirement_name(r) for r in [*names, *also])
    return {m: files for m, files in sorted(used.items()) if not _providers(m) & installed}


def _model_files(model_dir: Path, variant: str) -> list[tuple[Path, str]]:
    """(file, path in the archive) for the manifest, the tokenizer and the chosen variant, verified."""
    manifest = Manifest.load(model_dir)
    onnx_path, tokenizer_path = manifest.verify(model_dir, variant)
    # Where the settings look for the model when CONTENTFN_MODEL_DIR is unset (a relative path,
    # resolved from the function's working directory, the archive's root).
    default = PurePosixPath(Settings.model_construct().resolved_model_dir.as_posix())
    if default.is_absolute():
        raise PackagingError(f"the default model folder {default} is not relative to the working directory")
    files = [(model_dir / MANIFEST_NAME, MANIFEST_NAME), (tokenizer_path, ""), (onnx_path, "")]
    return [
        (path, str(default / (inside or path.resolve().relative_to(model_dir.resolve()).as_posix())))
        for path, inside in files
    ]


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=6)


def _refuse_left_out_imports(imports: Iterable[tuple[str, str]]) -> None:
    """The archive carries only ``CODE``: an import of the repository's other packages (the local
    runtime, the GPU worker) would fail in the cloud, so it stops the build."""
    carried = {PurePosixPath(name).stem for name in CODE}
    for where, name in imports:
        top = name.split(".")[0]
        if top in FIRST_PARTY and top not in carried:
            raise PackagingError(f"{where} imports {name!r}, which the source archive does not carry")


def build_gcp_source(
    out_dir: Path, *, repo: Path, model_dir: Path, variant: str = "fp32", limit_bytes: int = GCP_SOURCE_LIMIT_BYTES
) -> SourceArchive:
    """Write ``out_dir/functions-<sha256[:12]>.zip`` and return what it holds."""
    code = _code_files(repo)
    imports = _imports(code, root=repo)
    _refuse_left_out_imports(imports)
    requirements = runtime_requirements(repo / "pyproject.toml", _third_party(imports))
    header = "# Generated by `contentfn package gcp` from pyproject.toml: what the archived code uses.\n"
    members: list[tuple[str, Path | bytes]] = [(p.relative_to(repo).as_posix(), p) for p in code]
    members.append(("requirements.txt", (header + "\n".join(requirements) + "\n").encode()))
    members.extend((name, path) for path, name in _model_files(model_dir, variant))
    members.sort(key=lambda m: m[0])

    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / "functions.zip.partial"
    with zipfile.ZipFile(partial, "w") as archive:
        for name, source in members:
            _write(archive, name, source if isinstance(source, bytes) else source.read_bytes())
    size = partial.stat().st_size
    if size > limit_bytes:
        partial.unlink()
        raise PackagingError(
            f"the source archive is {size / 1e6:.1f} MB, over the {limit_bytes / 1e6:.0f} MB Cloud Run functions "
            f"accept; the {variant} model is most of it (try --variant int8)"
        )
    digest = sha256_file(partial)
    final = out_dir / f"functions-{digest[:12]}.zip"
    partial.replace(final)
    return SourceArchive(final, size, digest, len(members), tuple(requirements))
