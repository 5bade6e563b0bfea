"""The Embedder port: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Embedder"]


@runtime_checkable
class Embedder(Protocol):
    """A sentence embedder. Vectors are unit length, so cosine similarity is a dot product."""

    @property
    def model_key(self) -> str:
        """Name and version, e.g. ``all-MiniLM-L6-v2@onnx-fp32-1a2b3c4d``; stored beside every vector."""
        ...

    @property
    def dims(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dims), dtype float32, rows L2-normalised."""
        ...
