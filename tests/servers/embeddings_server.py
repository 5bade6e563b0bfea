"""An OpenAI-compatible ``/v1/embeddings`` server for tests: deterministic bag-of-words vectors of
a chosen dimension (texts sharing words are close), API key check, 429 and bad-answer modes."""

from __future__ import annotations

import json
import math
import re
import zlib
from http.server import BaseHTTPRequestHandler

from tests.servers import Handled, LocalServer, Seen

__all__ = ["EmbeddingsServer", "text_vector"]

_WORD = re.compile(r"[a-z0-9']+")


def text_vector(text: str, dims: int) -> list[float]:
    """Each word adds ±1 to one coordinate picked by its CRC32; normalised. Same text, same vector."""
    v = [0.0] * dims
    for word in _WORD.findall(text.lower()):
        h = zlib.crc32(word.encode())
        v[h % dims] += 1.0 if (h >> 16) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    if norm == 1.0 and not any(v):
        v[0] = 1.0  # an empty text still gets a unit vector
    return [x / norm for x in v]


class EmbeddingsServer(LocalServer):
    def __init__(
        self, *, dims: int = 64, api_key: str = "test-key", retry_after_s: int = 0, latency_s: float = 0.0
    ) -> None:
        super().__init__()
        self.dims = dims
        self.latency_s = latency_s
        self.api_key = api_key
        self.retry_after_s = retry_after_s
        self.mode = "ok"  # ok | 429 | 429_once | wrong_dims | garbage
        self.inputs = 0

    def embedding_requests(self) -> int:
        return len(self.requests_to("/v1/embeddings"))

    def handle(self, seen: Seen, handler: BaseHTTPRequestHandler) -> Handled | None:
        if seen.path != "/v1/embeddings" or seen.method != "POST":
            return Handled.json({"error": {"message": "not found"}}, 404)
        if seen.headers.get("authorization") != f"Bearer {self.api_key}":
            return Handled.json({"error": {"message": "invalid api key"}}, 401)
        if self.latency_s:
            self.hang(self.latency_s)
        if self.mode in ("429", "429_once"):
            if self.mode == "429_once":
                self.mode = "ok"
            return Handled.json({"error": {"message": "rate limited"}}, 429, {"retry-after": str(self.retry_after_s)})
        try:
            body = json.loads(seen.body)
            texts = body["input"]
            texts = [texts] if isinstance(texts, str) else list(texts)
        except (ValueError, KeyError, TypeError):
            return Handled.json({"error": {"message": "bad request"}}, 400)
        if self.mode == "garbage":
            return Handled.json({"object": "list", "data": "nope"})
        dims = self.dims + 1 if self.mode == "wrong_dims" else self.dims
        self.inputs += len(texts)
        data = [{"object": "embedding", "index": i, "embedding": text_vector(t, dims)} for i, t in enumerate(texts)]
        tokens = sum(len(_WORD.findall(t.lower())) for t in texts)
        # Answered out of order on purpose: clients must place vectors by "index".
        return Handled.json(
            {
                "object": "list",
                "data": list(reversed(data)),
                "model": body.get("model", "test-embed"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
