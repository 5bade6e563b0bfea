"""The configuration reference (docs/configuration.md) is generated from the Settings classes and
kept in step with them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from local import config_doc
from shared.config import Settings
from tests.conftest import REPO


def test_the_committed_reference_is_what_the_settings_classes_generate() -> None:
    # A failure here means a Settings field changed: run `make config-doc` and commit the result.
    assert config_doc.DOC_PATH.read_text(encoding="utf-8") == config_doc.render()


def test_every_variable_has_a_row_with_a_meaning() -> None:
    doc = config_doc.render()
    for cls, _ in config_doc.SETTINGS_CLASSES:
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no Field(description=...)"
            assert f"| `CONTENTFN_{name.upper()}` |" in doc


def test_a_row_shows_type_bounds_default_and_meaning() -> None:
    doc = config_doc.render()
    assert "| `CONTENTFN_DB_POOL_MAX` | integer (≥ 1, ≤ 256) | `8` | Connections the pool may open at most. |" in doc
    assert "| `CONTENTFN_EMBED_VARIANT` | one of `fp32`, `int8` | `fp32` |" in doc
    assert "| `CONTENTFN_QUEUES` | JSON object | `{}` |" in doc


def test_a_secret_default_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a settings class whose secret has a default value
    class WithSecret(Settings):
        demo_token: SecretStr = Field(default=SecretStr("s3cr3t-default"), description="A token.")

    monkeypatch.setattr(config_doc, "SETTINGS_CLASSES", ((WithSecret, "Test."),))
    # WHEN the reference is rendered
    doc = config_doc.render()
    # THEN its row says a default exists without showing it
    assert "| `CONTENTFN_DEMO_TOKEN` | secret | (secret, not shown) | A token. |" in doc
    assert "s3cr3t-default" not in doc


def test_check_mode_fails_on_a_stale_file_and_passes_once_regenerated(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    out.write_text("# stale\n", encoding="utf-8")
    assert config_doc.main(["--check", "--out", str(out)]) == 1
    assert out.read_text(encoding="utf-8") == "# stale\n"  # --check writes nothing
    assert config_doc.main(["--out", str(out)]) == 0
    assert config_doc.main(["--check", "--out", str(out)]) == 0


def test_every_settings_class_in_the_code_is_in_the_reference() -> None:
    # A new pydantic-settings class (BaseSettings or a subclass of a documented one) must be added
    # to SETTINGS_CLASSES, or its variables would be missing from the reference.
    documented = {cls.__name__ for cls, _ in config_doc.SETTINGS_CLASSES}
    found = set()
    for package in ("shared", "functions", "local", "infra"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                    if bases & (documented | {"BaseSettings"}):
                        found.add(node.name)
    assert found and found <= documented, found - documented
