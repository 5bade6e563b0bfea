"""The architecture's rules, checked on the imports as written (read with ``ast``, nothing imported).

- Cloud SDKs stand only in adapter modules: ``shared.platform`` and the named port adapters.
- No import cycle between files. Imports under ``if TYPE_CHECKING:`` do not count (they never run);
  function-local imports do: deferring an import is how a cycle hides, not how it goes away.
- No cycle between function packages.
- Domain packages never import the platform layer.
"""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import Import, cycles, dependencies, imports_of, project_modules

CLOUD_SDKS = (
    "boto3",
    "botocore",
    "mypy_boto3",
    "google.cloud",
    "google.api_core",
    "google.auth",
    "functions_framework",
    "aws_lambda_powertools",
)
# Port adapters: each the one place a port meets its cloud's SDK, imported only for that backend.
ADAPTER_MODULES = frozenset(
    {
        "shared.blob.s3",
        "shared.blob.gcs",
        "shared.queue.sqs",
        "shared.queue.pubsub",
        "shared.queue.backlog_gcp",
        "shared.secrets.aws",
        "shared.store.credentials_aws",
        "shared.store.credentials_gcp",
    }
)
PLATFORM = "shared.platform"


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _all_imports() -> list[Import]:
    return [imp for name, path in project_modules().items() for imp in imports_of(name, path)]


def _is_sdk(target: str) -> bool:
    return any(target == sdk or target.startswith(sdk + ".") or target.startswith(sdk + "_") for sdk in CLOUD_SDKS)


def test_cloud_sdks_are_imported_only_by_the_platform_layer_and_port_adapters() -> None:
    # GIVEN every import under shared/, wherever it stands (module level, in a function, type-only)
    offenders = [
        f"{imp.module}:{imp.line} imports {imp.base}"
        for imp in _all_imports()
        if _in(imp.module, "shared")
        and not _in(imp.module, PLATFORM)
        and imp.module not in ADAPTER_MODULES
        and _is_sdk(imp.base)
    ]
    # THEN none of them names a cloud SDK
    assert offenders == []


def test_every_named_adapter_module_exists_and_imports_a_cloud_sdk() -> None:
    # A renamed or emptied adapter must leave the list, or the list would excuse any future module.
    modules = project_modules()
    assert modules.keys() >= ADAPTER_MODULES
    for name in sorted(ADAPTER_MODULES):
        assert any(_is_sdk(imp.base) for imp in imports_of(name, modules[name])), name


def test_project_modules_form_no_import_cycle() -> None:
    assert cycles(dependencies()) == []


def test_function_packages_form_no_cycle() -> None:
    # GIVEN the dependencies between function packages (functions.<fn>), from every file's imports
    packages: dict[str, set[str]] = {}
    for module, targets in dependencies().items():
        if not _in(module, "functions") or module.count(".") < 1:
            continue
        source = ".".join(module.split(".")[:2])
        packages.setdefault(source, set())
        for target in targets:
            if _in(target, "functions") and target.count(".") >= 1:
                destination = ".".join(target.split(".")[:2])
                if destination != source:
                    packages[source].add(destination)
    # THEN no two function packages depend on each other, even through a third
    assert cycles(packages) == []
    # AND the API, which serves analyze's endpoint, depends on analyze's core (the graph is read)
    assert "functions.analyze" in packages["functions.api"]


def test_domain_packages_do_not_import_the_platform_layer() -> None:
    offenders = [
        f"{imp.module}:{imp.line} imports {imp.base}"
        for imp in _all_imports()
        if _in(imp.module, "shared") and not _in(imp.module, PLATFORM) and _in(imp.target, PLATFORM)
    ]
    assert offenders == []


def test_import_reader_sees_function_local_and_type_only_imports(tmp_path: Path) -> None:
    # GIVEN a module importing at module level, inside a function, under TYPE_CHECKING and relatively
    source = tmp_path / "mod.py"
    source.write_text(
        "from __future__ import annotations\n"
        "import typing\n"
        "from shared.config import Settings\n"
        "if typing.TYPE_CHECKING:\n"
        "    from shared.services import Services\n"
        "else:\n"
        "    import json\n"
        "def build():\n"
        "    import boto3\n"
        "    from . import sibling\n",
        encoding="utf-8",
    )
    # WHEN it is read as shared.store.mod
    found = {imp.target: (imp.function_local, imp.type_checking) for imp in imports_of("shared.store.mod", source)}
    # THEN each import is found with where it stands
    assert found == {
        "__future__.annotations": (False, False),
        "typing": (False, False),
        "shared.config.Settings": (False, False),
        "shared.services.Services": (False, True),
        "json": (False, False),
        "boto3": (True, False),
        "shared.store.sibling": (True, False),
    }


def test_cycle_finder_reports_a_cycle_through_three_modules_and_ignores_a_chain() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
