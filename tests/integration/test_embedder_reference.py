"""The exported model against the reference: sentence-transformers on the same shipped weights.

Vectors are stored forever beside a model key, so the ONNX path must reproduce the reference, not
merely look plausible. The texts cover short, long (past the 256-token cap, so truncation is
compared too) and many scripts. The int8 variant is held to a looser, stated bound against fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.embedder.onnx import OnnxEmbedder
from tests.embedder_fixtures import cosines, long_texts, model_dir, reference_model, varied_texts

__all__ = ["model_dir"]  # re-exported fixture

pytestmark = pytest.mark.slow

# Same weights, same arithmetic up to float reordering: anything below this is a real difference.
FP32_MIN_COSINE = 0.999
# Quantisation error budget of the int8 variant against fp32 (see shared.embedder.build.INT8_RECIPE).
INT8_MIN_COSINE = 0.98


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return varied_texts()


@pytest.fixture(scope="module")
def reference_vectors(texts: list[str]) -> np.ndarray:
    model = reference_model()
    return np.asarray(model.encode(texts, batch_size=16, normalize_embeddings=True), dtype=np.float32)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def fp32(model_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(model_dir, variant="fp32", batch_size=16)


def test_fp32_matches_sentence_transformers_on_varied_texts(
    fp32: OnnxEmbedder, texts: list[str], reference_vectors: np.ndarray
) -> None:
    # GIVEN >= 50 texts of every kind, some longer than the token cap
    assert len(texts) >= 50
    assert max(fp32.token_lengths(texts)) == fp32.manifest.max_tokens == 256
    # WHEN both embed them
    vectors = fp32.embed(texts)
    # THEN every row agrees with the reference
    similarity = cosines(vectors, reference_vectors)
    worst = int(np.argmin(similarity))
    assert similarity.min() >= FP32_MIN_COSINE, f"cosine {similarity.min():.5f} on text #{worst}: {texts[worst][:60]!r}"


def test_fp32_rows_are_unit_float32(fp32: OnnxEmbedder, texts: list[str]) -> None:
    vectors = fp32.embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_fp32_vector_does_not_depend_on_batching(fp32: OnnxEmbedder, texts: list[str]) -> None:
    # Padding to a longer neighbour must not change a text's vector (the mask covers it).
    batched = fp32.embed(texts)
    alone = np.vstack([fp32.embed([text]) for text in texts[::7]])
    assert cosines(batched[::7], alone).min() >= 0.99999


def test_fp32_model_key_is_stable_across_loads(model_dir: Path, fp32: OnnxEmbedder) -> None:
    again = OnnxEmbedder(model_dir, variant="fp32", batch_size=3)
    assert again.model_key == fp32.model_key
    assert fp32.model_key.startswith("all-MiniLM-L6-v2@onnx-fp32-")


def test_semantics_survive_export(fp32: OnnxEmbedder) -> None:
    # A paraphrase is closer than an unrelated sentence: the vectors carry meaning, not noise.
    anchor, paraphrase, unrelated = fp32.embed(
        ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock market fell sharply today."]
    )
    assert float(anchor @ paraphrase) > float(anchor @ unrelated) + 0.3


def test_int8_stays_close_to_fp32(model_dir: Path, fp32: OnnxEmbedder, texts: list[str]) -> None:
    try:
        int8 = OnnxEmbedder(model_dir, variant="int8", batch_size=16)
    except Exception as exc:  # pragma: no cover - only when built with --no-int8
        pytest.fail(f"int8 variant missing ({exc}); run `make model`")
    assert int8.model_key.startswith("all-MiniLM-L6-v2@onnx-int8-")
    all_texts = texts + long_texts(32)
    similarity = cosines(int8.embed(all_texts), fp32.embed(all_texts))
    assert similarity.min() >= INT8_MIN_COSINE, f"int8 min cosine {similarity.min():.4f}, mean {similarity.mean():.4f}"
