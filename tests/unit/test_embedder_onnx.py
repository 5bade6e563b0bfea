"""The ONNX embedder's own logic: pooling, normalisation, length bucketing and order restore.

Runs the real runtime path (manifest, hashing, tokenizer, onnxruntime session) on a tiny model
written by the test, so it needs no built model and takes well under a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.config import load_settings
from shared.embedder import Embedder, load_embedder
from shared.embedder.onnx import OnnxEmbedder, l2_normalize, length_batches, mean_pool
from tests.embedder_fixtures import REPO_ROOT, build_tiny_model, tiny_expected


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, np.ndarray]:
    folder = tmp_path / "tiny-model"
    table = build_tiny_model(folder, max_tokens=8)
    return folder, np.asarray(table)


class _RecordingSession:
    """Wraps an onnxruntime session and records the (batch, width) shape of every call."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.shapes: list[tuple[int, int]] = []

    def run(self, outputs: object, feeds: dict[str, np.ndarray]) -> object:
        self.shapes.append(feeds["input_ids"].shape)
        return self.inner.run(outputs, feeds)  # type: ignore[attr-defined]


def _ids(embedder: OnnxEmbedder, text: str) -> list[int]:
    return embedder._tokenizer.encode(text).ids


def test_mean_pool_ignores_padding_positions() -> None:
    # GIVEN one row with two real tokens and two padded positions holding large junk values
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0], [-50.0, 7.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0, 0]])
    # THEN only the real tokens are averaged
    np.testing.assert_allclose(mean_pool(hidden, mask), [[2.0, 3.0]])


def test_mean_pool_of_all_padding_row_is_zero_not_nan() -> None:
    hidden = np.ones((1, 3, 2), dtype=np.float32)
    pooled = mean_pool(hidden, np.zeros((1, 3), dtype=np.int64))
    assert np.all(np.isfinite(pooled)) and np.all(pooled == 0)


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows_finite() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=np.float32)
    normed = l2_normalize(vectors)
    np.testing.assert_allclose(np.linalg.norm(normed[[0, 2]], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(normed[0], [0.6, 0.8], rtol=1e-6)
    assert np.all(np.isfinite(normed[1]))


def test_length_batches_cover_every_index_once_longest_first() -> None:
    lengths = [5, 1, 9, 3, 9, 2, 7]
    batches = length_batches(lengths, batch_size=3)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [len(batch) for batch in batches] == [3, 3, 1]
    # Non-increasing lengths along the order, equal lengths kept in input order (stable).
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert flat[:2].tolist() == [2, 4]


def test_length_batches_rejects_zero_batch_size() -> None:
    with pytest.raises(ValueError):
        length_batches([1, 2], batch_size=0)


def test_embed_returns_unit_float32_rows_in_input_order(tiny: tuple[Path, np.ndarray]) -> None:
    folder, table = tiny
    embedder = OnnxEmbedder(folder, batch_size=2)
    # GIVEN texts of very different lengths, so sorting by length reorders them
    texts = ["river", "the river carried small lights", "bass", "the quiet harbour while a", "gold teeth"]
    vectors = embedder.embed(texts)
    # THEN each row is the expected vector of the text at the same position
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), embedder.dims)
    for row, text in zip(vectors, texts, strict=True):
        np.testing.assert_allclose(row, tiny_expected(table, _ids(embedder, text)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_embedding_does_not_depend_on_batch_companions(tiny: tuple[Path, np.ndarray]) -> None:
    folder, _ = tiny
    embedder = OnnxEmbedder(folder, batch_size=4)
    texts = ["bass", "the river carried small lights past the", "chord", "minor major chord progression"]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([text]) for text in texts])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_each_batch_is_padded_only_to_its_own_longest_text(tiny: tuple[Path, np.ndarray]) -> None:
    folder, _ = tiny
    embedder = OnnxEmbedder(folder, batch_size=2)
    recorder = _RecordingSession(embedder._session)
    embedder._session = recorder  # type: ignore[assignment]
    # Token counts with [CLS]/[SEP]: 3, 8 (truncated), 4, 7
    texts = ["bass", "a b c d e f g h i j", "gold teeth", "the quiet harbour while a"]
    embedder.embed(texts)
    assert recorder.shapes == [(2, 8), (2, 4)]


def test_texts_past_the_token_cap_are_truncated(tiny: tuple[Path, np.ndarray]) -> None:
    folder, table = tiny
    embedder = OnnxEmbedder(folder)
    long_text = " ".join(["river"] * 50)
    ids = _ids(embedder, long_text)
    assert len(ids) == embedder.manifest.max_tokens == 8
    np.testing.assert_allclose(embedder.embed([long_text])[0], tiny_expected(table, ids), rtol=1e-5)


def test_empty_input_returns_an_empty_matrix(tiny: tuple[Path, np.ndarray]) -> None:
    folder, _ = tiny
    vectors = OnnxEmbedder(folder).embed([])
    assert vectors.shape == (0, 8) and vectors.dtype == np.float32


def test_a_bare_string_is_refused_instead_of_embedded_per_character(tiny: tuple[Path, np.ndarray]) -> None:
    folder, _ = tiny
    with pytest.raises(TypeError):
        OnnxEmbedder(folder).embed("river")
    with pytest.raises(TypeError):
        OnnxEmbedder(folder).embed(["river", None])  # type: ignore[list-item]


def test_model_key_names_variant_and_file_hash_and_is_stable(tiny: tuple[Path, np.ndarray]) -> None:
    folder, _ = tiny
    first = OnnxEmbedder(folder)
    second = OnnxEmbedder(folder, batch_size=7, threads=1)
    sha8 = first.manifest.variants["fp32"].sha256[:8]
    assert first.model_key == second.model_key == f"tiny@onnx-fp32-{sha8}"


def test_model_key_changes_when_the_model_file_changes(tmp_path: Path) -> None:
    build_tiny_model(tmp_path / "a", seed=1)
    build_tiny_model(tmp_path / "b", seed=2)
    assert OnnxEmbedder(tmp_path / "a").model_key != OnnxEmbedder(tmp_path / "b").model_key


def test_onnx_embedder_satisfies_the_embedder_port(tiny: tuple[Path, np.ndarray]) -> None:
    folder, _ = tiny
    assert isinstance(OnnxEmbedder(folder), Embedder)


def test_load_embedder_uses_the_settings_fields(tiny: tuple[Path, np.ndarray]) -> None:
    folder, _ = tiny
    settings = load_settings(model_dir=folder, embed_variant="fp32", embed_batch_size=3, embed_threads=1)
    embedder = load_embedder(settings)
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.variant == "fp32" and embedder._batch_size == 3
    assert embedder.embed(["bass"]).shape == (1, 8)


def test_invalid_constructor_arguments_are_refused(tiny: tuple[Path, np.ndarray]) -> None:
    folder, _ = tiny
    with pytest.raises(ValueError):
        OnnxEmbedder(folder, batch_size=0)
    with pytest.raises(ValueError):
        OnnxEmbedder(folder, threads=-1)


def test_runtime_imports_stay_light() -> None:
    # Importing the package must not load onnxruntime; the adapter must never load torch/transformers.
    code = (
        "import sys\n"
        "import shared.embedder\n"
        "assert 'onnxruntime' not in sys.modules, 'package import loaded onnxruntime'\n"
        "from shared.embedder import OnnxEmbedder\n"
        "import shared.embedder.onnx\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'onnx') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
