"""An :class:`Embedder` over any OpenAI-compatible ``/v1/embeddings`` endpoint.

Texts go in batches of ``batch_size`` (one request each); 429 and 5xx answers are retried by the
SSRF-safe client with capped backoff, honouring ``Retry-After`` through its per-host limiter, as
the LLM client does. Each answer is checked (one vector per input, in input order, of the model's
registered dimension) because a vector of the wrong size would poison the model's index. Tokens
reported in ``usage`` are counted and priced, like the LLM's cost ledger.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.errors import PoisonError, TransientError
from shared.net.errors import OutboundError, UpstreamRejected, UpstreamUnavailable

if TYPE_CHECKING:
    from shared.net.client import SafeHttpClient

__all__ = ["EmbeddingsInvalid", "EmbeddingsUnavailable", "OpenAIEmbedder"]


class EmbeddingsUnavailable(TransientError):
    """The endpoint did not answer usefully (429, 5xx, timeout) after the retries: try later."""


class EmbeddingsInvalid(PoisonError):
    """The endpoint answered outside the embeddings format, or with vectors of another dimension."""


class OpenAIEmbedder:
    def __init__(
        self,
        http: SafeHttpClient,
        *,
        key: str,
        base_url: str,
        model: str,
        dims: int,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        price_per_mtok: float = 0.0,
    ) -> None:
        self.http = http
        self._key = key
        base = base_url.rstrip("/")
        self.url = base + ("/embeddings" if base.endswith("/v1") else "/v1/embeddings")
        self.model = model
        self._dims = dims
        self.api_key = api_key
        self.batch_size = max(1, batch_size)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.price_per_mtok = price_per_mtok
        self._lock = threading.Lock()
        self.tokens_used = 0
        self.requests = 0

    @property
    def model_key(self) -> str:
        return self._key

    @property
    def dims(self) -> int:
        return self._dims

    @property
    def cost_usd(self) -> float:
        """What the tokens embedded so far cost at the configured price."""
        return self.tokens_used * self.price_per_mtok / 1_000_000

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dims), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            out[start : start + len(batch)] = self._embed_batch(batch)
        return out

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "input": batch, "encoding_format": "float"}
        try:
            result = self.http.post(
                self.url,
                json_body=body,
                headers=headers,
                timeout_s=self.timeout_s,
                max_retries=self.max_retries,
                max_bytes=64 << 20,
            )
        except UpstreamUnavailable as exc:
            raise EmbeddingsUnavailable(f"embeddings endpoint unavailable: {exc}") from None
        except UpstreamRejected as exc:
            raise EmbeddingsInvalid(f"embeddings endpoint refused the request: {exc}") from None
        except OutboundError as exc:
            raise EmbeddingsUnavailable(f"embeddings endpoint unreachable: {type(exc).__name__}") from None
        vectors = self._parse(result.json(), len(batch))
        with self._lock:
            self.requests += 1
        return vectors

    def _parse(self, doc: Any, n: int) -> np.ndarray:
        try:
            items = sorted(doc["data"], key=lambda d: int(d["index"]))
            vectors = np.asarray([item["embedding"] for item in items], dtype=np.float32)
            tokens = int((doc.get("usage") or {}).get("prompt_tokens") or 0)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise EmbeddingsInvalid("embeddings endpoint answered outside the embeddings format") from None
        if vectors.shape != (n, self._dims):
            raise EmbeddingsInvalid(
                f"embeddings endpoint answered {vectors.shape[0] if vectors.ndim else 0} vectors of"
                f" {vectors.shape[-1] if vectors.ndim == 2 else '?'} dimensions; expected {n} of {self._dims}"
            )
        with self._lock:
            self.tokens_used += tokens
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not np.all(norms > 0):
            raise EmbeddingsInvalid("embeddings endpoint answered a zero vector")
        return vectors / norms
