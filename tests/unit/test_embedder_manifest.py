"""Manifest loading and verification: every way a model folder can be unusable says "run make model"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.embedder import Manifest
from shared.embedder.manifest import FileEntry, sha256_file
from shared.embedder.onnx import OnnxEmbedder
from shared.errors import ModelNotReady
from tests.embedder_fixtures import build_tiny_model


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    build_tiny_model(target)
    return target


def test_missing_model_folder_says_run_make_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotReady, match="make model"):
        OnnxEmbedder(tmp_path / "nowhere")


def test_corrupt_manifest_json_says_run_make_model(folder: Path) -> None:
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelNotReady, match="make model"):
        Manifest.load(folder)


def test_manifest_missing_a_field_is_not_ready(folder: Path) -> None:
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    del data["variants"]
    (folder / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelNotReady, match="make model"):
        Manifest.load(folder)


def test_modified_onnx_file_fails_its_hash_check(folder: Path) -> None:
    # GIVEN a model file changed after the manifest was written (half-copied, swapped)
    with (folder / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    # THEN the embedder refuses to open it instead of producing unverifiable vectors
    with pytest.raises(ModelNotReady, match=r"does not match .*make model"):
        OnnxEmbedder(folder)


def test_deleted_tokenizer_is_not_ready(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelNotReady, match=r"missing.*make model"):
        OnnxEmbedder(folder)


def test_variant_that_was_not_built_names_what_was(folder: Path) -> None:
    with pytest.raises(ModelNotReady, match=r"'int8' was not built \(built: fp32\)"):
        OnnxEmbedder(folder, variant="int8")


def test_entry_pointing_outside_the_folder_is_refused(folder: Path) -> None:
    entry = FileEntry(path="../outside.onnx", sha256="0" * 64, bytes=0)
    with pytest.raises(ModelNotReady, match="outside"):
        entry.verify(folder)


def test_manifest_round_trips_and_records_the_real_hashes(folder: Path) -> None:
    manifest = Manifest.load(folder)
    assert manifest.variants["fp32"].sha256 == sha256_file(folder / "model.onnx")
    manifest.save(folder)
    assert Manifest.load(folder) == manifest
    assert not (folder / "manifest.json.tmp").exists()


def test_int8_variant_loads_when_built(tmp_path: Path) -> None:
    build_tiny_model(tmp_path / "m", int8=True)
    embedder = OnnxEmbedder(tmp_path / "m", variant="int8")
    assert embedder.model_key.startswith("tiny@onnx-int8-")
