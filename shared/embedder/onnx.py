"""Sentence embeddings with ONNX Runtime: all-MiniLM-L6-v2, mean pooling, L2 norm, 256-token cap.

Only onnxruntime, numpy and the ``tokenizers`` fast tokenizer are used here; torch and transformers
are build-time tools (see :mod:`shared.embedder.build`) and must never be imported on this path,
because a function's cold start pays for every import.

Throughput comes from padding as little as possible: texts are tokenised once, sorted by token
count, cut into batches of similar length, and the results are put back in the caller's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shared.embedder.manifest import Manifest

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

__all__ = ["OnnxEmbedder", "l2_normalize", "length_batches", "mean_pool"]


def mean_pool(token_vectors: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Average the token vectors of each row over its real tokens only.

    Padding positions carry hidden states too; including them would make a text's vector depend on
    the longest text it happened to be batched with.
    """
    mask = attention_mask.astype(token_vectors.dtype, copy=False)[:, :, None]
    summed = (token_vectors * mask).sum(axis=1)
    counts = np.clip(mask.sum(axis=1), 1e-9, None)
    pooled: np.ndarray = summed / counts
    return pooled


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length so cosine similarity is a plain dot product in pgvector and numpy."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalized: np.ndarray = vectors / np.clip(norms, 1e-12, None)
    return normalized


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Group text indices into batches of similar token length, longest first.

    Each batch is padded only to its own longest member, so a few long texts no longer make every
    short text pay for 256 positions. Longest first puts the peak memory at the start, where an
    out-of-memory failure costs the least work.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    # A stable sort keeps equal-length texts in input order, which makes runs reproducible.
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


class OnnxEmbedder:
    """The :class:`~shared.embedder.base.Embedder` port over an exported ONNX model directory.

    ``variant`` picks ``model.onnx`` ("fp32") or the quantised file ("int8") listed in the manifest;
    ``threads`` = 0 lets onnxruntime choose; ``batch_size`` bounds texts per inference call.
    Files are hash-checked against the manifest before the session opens, so a corrupt or missing
    model fails here with :class:`~shared.errors.ModelNotReady` instead of producing bad vectors.
    """

    def __init__(self, model_dir: Path | str, variant: str = "fp32", threads: int = 0, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if threads < 0:
            raise ValueError("threads must be 0 (automatic) or positive")
        self._model_dir = Path(model_dir)
        self._manifest = Manifest.load(self._model_dir)
        onnx_path, tokenizer_path = self._manifest.verify(self._model_dir, variant)
        self._variant = variant
        self._batch_size = batch_size
        self._model_key = self._manifest.model_key(variant)
        self._tokenizer = _open_tokenizer(tokenizer_path, self._manifest.max_tokens)
        self._session = _open_session(onnx_path, threads)
        self._input_names = {item.name for item in self._session.get_inputs()}

    @property
    def model_key(self) -> str:
        return self._model_key

    @property
    def dims(self) -> int:
        return self._manifest.dims

    @property
    def variant(self) -> str:
        return self._variant

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Token count of each text after truncation, special tokens included."""
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(_checked(texts))]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return (len(texts), dims) float32 unit rows, in the order of ``texts``."""
        texts = _checked(texts)
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts)
        lengths = [len(encoding.ids) for encoding in encodings]
        for batch in length_batches(lengths, self._batch_size):
            width = max(lengths[i] for i in batch)
            input_ids = np.zeros((len(batch), width), dtype=np.int64)
            attention_mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, index in enumerate(batch):
                ids = encodings[index].ids
                input_ids[row, : len(ids)] = ids
                attention_mask[row, : len(ids)] = 1
            out[batch] = self._run(input_ids, attention_mask)
        return out

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            # Single-segment input: every token belongs to segment 0.
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        token_vectors = self._session.run(None, feeds)[0]
        return l2_normalize(mean_pool(token_vectors, attention_mask)).astype(np.float32, copy=False)


def _checked(texts: Sequence[str]) -> list[str]:
    # A bare string is a Sequence[str] too; embedding it character by character is never intended.
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not a single string")
    items = list(texts)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"embed() takes strings, got {type(item).__name__}")
    return items


def _open_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    # The shipped tokenizer.json pads every text to a fixed 128 and truncates there; the model's
    # sentence-transformers config says 256. Padding is done per batch here, so turn it off.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def _open_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    # One model per session and one call at a time: parallelism across graph nodes only adds threads.
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
