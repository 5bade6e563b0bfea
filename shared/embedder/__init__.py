"""Sentence embeddings: the :class:`Embedder` port, the model manifest and the ONNX Runtime adapter.

Importing this package is cheap on purpose: onnxruntime and the tokenizer load only when an
embedder is built (``load_embedder`` or ``OnnxEmbedder``), so functions that never embed do not
pay for them at cold start, and torch is never imported outside the build step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.embedder.base import Embedder
from shared.embedder.manifest import Manifest

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.embedder.onnx import OnnxEmbedder

__all__ = ["Embedder", "Manifest", "OnnxEmbedder", "load_embedder"]


def load_embedder(settings: Settings) -> Embedder:
    """Build the process's embedder from settings; raises ModelNotReady when ``make model`` has not run."""
    from shared.embedder.onnx import OnnxEmbedder

    return OnnxEmbedder(
        settings.resolved_model_dir,
        variant=settings.embed_variant,
        threads=settings.embed_threads,
        batch_size=settings.embed_batch_size,
    )


def __getattr__(name: str) -> object:
    # Lazy export: `from shared.embedder import OnnxEmbedder` works without importing onnxruntime
    # when the package itself is imported.
    if name == "OnnxEmbedder":
        from shared.embedder.onnx import OnnxEmbedder

        return OnnxEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
