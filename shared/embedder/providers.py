"""From a registry row to a working :class:`Embedder`, and the specs of the models one can add.

Providers: ``onnx`` (the built-in model directory; each variant, fp32 and int8, is its own model so
search can be switched to the faster one) and ``openai`` (any OpenAI-compatible ``/v1/embeddings``
endpoint). A built-in model's key is the embedder's own ``model_key``, which carries the variant
file's hash, so vectors of another build of the files are never mixed with these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.embedder.base import Embedder
from shared.embedder.manifest import Manifest
from shared.errors import ModelNotReady
from shared.store.registry import EmbeddingModel, ModelSpec, add_model, list_models

if TYPE_CHECKING:
    from typing import Any

    import psycopg

    from shared.config import Settings

__all__ = ["PROVIDERS", "add_with_default", "builtin_spec", "embedder_for", "openai_spec"]

PROVIDERS = ("onnx", "openai")


def builtin_spec(settings: Settings, variant: str) -> ModelSpec:
    """The registry entry of one variant of the built-in ONNX model (files hash-named in its key)."""
    manifest = Manifest.load(settings.resolved_model_dir)
    entry = manifest.variant_file(variant)
    name, _, version = manifest.model_key(variant).partition("@")
    return ModelSpec(
        name=name,
        version=version,
        provider="onnx",
        dimensions=manifest.dims,
        max_tokens=manifest.max_tokens,
        manifest_hash=entry.sha256,
        options={"variant": variant},
    )


def openai_spec(
    *,
    name: str,
    version: str,
    dimensions: int,
    base_url: str,
    model: str | None = None,
    max_tokens: int = 8191,
    batch_size: int = 64,
    price_per_mtok: float = 0.0,
) -> ModelSpec:
    """The registry entry of a model served by an OpenAI-compatible endpoint. The API key is not
    stored (it is a secret): it comes from the ``embed_api_key`` setting of each process."""
    return ModelSpec(
        name=name,
        version=version,
        provider="openai",
        dimensions=dimensions,
        max_tokens=max_tokens,
        options={
            "base_url": base_url,
            "model": model or name,
            "batch_size": batch_size,
            "price_per_mtok": price_per_mtok,
        },
    )


def embedder_for(model: EmbeddingModel, settings: Settings) -> Embedder:
    """A ready embedder for a registered model; ModelNotReady when its files or endpoint are not
    what was registered."""
    if model.provider == "onnx":
        from shared.embedder.onnx import OnnxEmbedder

        variant = str(model.options.get("variant", "fp32"))
        embedder = OnnxEmbedder(
            settings.resolved_model_dir,
            variant=variant,
            threads=settings.embed_threads,
            batch_size=settings.embed_batch_size,
        )
        if embedder.model_key != model.key:
            raise ModelNotReady(
                f"model {model.key} is registered but the files under the model directory are {embedder.model_key}"
            )
        return embedder
    if model.provider == "openai":
        from shared.embedder.openai import OpenAIEmbedder
        from shared.net.client import SafeHttpClient
        from shared.net.policy import AddressPolicy

        http = SafeHttpClient(
            policy=AddressPolicy.from_networks(settings.http_allow_networks),
            timeout_s=settings.http_timeout_s,
            max_retries=settings.http_max_retries,
            backoff_base_s=settings.http_backoff_base_s,
            backoff_cap_s=settings.http_backoff_cap_s,
            user_agent=settings.http_user_agent,
        )
        opts = model.options
        return OpenAIEmbedder(
            http,
            key=model.key,
            base_url=str(opts["base_url"]),
            model=str(opts.get("model", model.name)),
            dims=model.dimensions,
            api_key=settings.embed_api_key.get_secret_value() if settings.embed_api_key else None,
            batch_size=int(opts.get("batch_size", 64)),
            timeout_s=settings.http_timeout_s,
            max_retries=settings.http_max_retries,
            price_per_mtok=float(opts.get("price_per_mtok", 0.0)),
        )
    raise ModelNotReady(f"model {model.key} has an unknown provider {model.provider!r}")


def add_with_default(conn: psycopg.Connection[Any], settings: Settings, spec: ModelSpec) -> EmbeddingModel:
    """Add ``spec`` as a shadow model. In a registry still empty, the configured built-in model
    (whose vectors serve search today) is registered first, as the active one, so the new model
    is a shadow beside it rather than an active model with no vectors. The caller commits."""
    if not list_models(conn) and spec.key != builtin_spec(settings, settings.embed_variant).key:
        add_model(conn, builtin_spec(settings, settings.embed_variant))
    return add_model(conn, spec)
