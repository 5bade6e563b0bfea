"""An OpenAI-compatible ``POST /v1/chat/completions`` server with a deterministic "model".

``mode`` picks the answer: ``ok`` (a valid profile as JSON), ``invalid`` (not JSON, every time),
``invalid_once`` (not JSON, then valid on the repair request), ``wrong_schema`` (JSON that breaks
the schema), ``429`` (with Retry-After), ``500``, ``hang`` (holds the request, bounded). ``latency_s``
delays every answer. The label is a fixed function of the lyric (``label_for``), so tests and the
benchmark can compare a distilled predictor against it.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers import Handled, LocalServer, Seen

__all__ = ["LlmServer", "label_for"]

_WORD = re.compile(r"[a-z']+")
_POSITIVE = frozenset(
    [
        "love",
        "light",
        "joy",
        "free",
        "dance",
        "glory",
        "home",
        "bright",
        "gold",
        "sun",
        "smile",
        "sweet",
        "warm",
        "shine",
        "heaven",
        "grace",
        "happy",
        "alive",
        "dream",
        "dreams",
        "hope",
        "laugh",
        "gentle",
        "kind",
        "hold",
        "together",
        "forever",
    ]
)
_NEGATIVE = frozenset(
    [
        "tears",
        "cold",
        "fear",
        "dark",
        "lost",
        "gone",
        "cry",
        "die",
        "dead",
        "war",
        "alone",
        "broken",
        "pain",
        "grave",
        "hurt",
        "cruel",
        "storm",
        "sank",
        "empty",
        "bleed",
        "blood",
        "lie",
        "lies",
        "goodbye",
        "ghost",
        "sorrow",
    ]
)
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "its",
        "is",
        "are",
        "was",
        "were",
        "be",
        "i",
        "you",
        "we",
        "they",
        "he",
        "she",
        "it",
        "me",
        "us",
        "them",
        "that",
        "this",
        "these",
        "those",
        "all",
        "as",
        "by",
        "from",
        "up",
        "down",
        "out",
        "so",
        "but",
        "not",
        "no",
    ]
)


def label_for(lyrics: str) -> dict[str, Any]:
    """The profile this fake model answers for a lyric."""
    tokens = _WORD.findall(lyrics.lower())
    n = max(1, len(tokens))
    lines = [line for line in lyrics.split("\n") if line.strip()]
    pos = sum(1 for t in tokens if t in _POSITIVE)
    neg = sum(1 for t in tokens if t in _NEGATIVE)
    score = (pos - neg) / (pos + neg + 2)
    if pos >= 3 and neg >= 3 and abs(score) < 0.2:
        sentiment = "mixed"
    elif score > 0.2:
        sentiment = "positive"
    elif score < -0.2:
        sentiment = "negative"
    else:
        sentiment = "neutral"
    diversity = len(set(tokens)) / n
    quality = 2 + 7 * (diversity - 0.35) / 0.45 + (1.5 if len(lines) >= 12 else 0) - (1 if neg > pos + 2 else 0)
    content = [t for t in tokens if t not in _STOP and len(t) > 3]
    counts: dict[str, int] = {}
    for t in content:
        counts[t] = counts.get(t, 0) + 1
    themes = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]
    return {
        "sentiment": sentiment,
        "sentiment_score": round(max(-1.0, min(1.0, score)), 3),
        "themes": themes,
        "complexity": round(min(1.0, diversity), 3),
        "quality": int(max(1, min(10, round(quality)))),
    }


class LlmServer(LocalServer):
    def __init__(
        self, *, api_key: str = "test-key", latency_s: float = 0.0, retry_after_s: int = 2, port: int = 0
    ) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.latency_s = latency_s
        self.retry_after_s = retry_after_s
        self.mode = "ok"
        self.hang_s = 10.0
        self.calls = 0
        self._count_lock = threading.Lock()

    def completions(self) -> int:
        return len(self.requests_to("/v1/chat/completions"))

    def handle(self, seen: Seen, handler: BaseHTTPRequestHandler) -> Handled | None:
        if seen.path != "/v1/chat/completions" or seen.method != "POST":
            return Handled.json({"error": {"message": "not found"}}, 404)
        if seen.headers.get("authorization") != f"Bearer {self.api_key}":
            return Handled.json({"error": {"message": "invalid api key"}}, 401)
        with self._count_lock:
            self.calls += 1
        if self.latency_s:
            self.hang(self.latency_s)
        mode = self.mode
        if mode == "429":
            return Handled.json({"error": {"message": "rate limited"}}, 429, {"retry-after": str(self.retry_after_s)})
        if mode == "500":
            return Handled.json({"error": {"message": "server error"}}, 500)
        if mode == "hang":
            self.hang(self.hang_s)
            return Handled.json({"error": {"message": "late"}}, 504)
        try:
            body = json.loads(seen.body)
            messages = body["messages"]
        except (ValueError, KeyError, TypeError):
            return Handled.json({"error": {"message": "bad request"}}, 400)
        if not isinstance(body.get("response_format"), dict):
            return Handled.json({"error": {"message": "response_format required"}}, 400)
        user = next((m["content"] for m in messages if m.get("role") == "user"), "")
        lyrics = user.split("Lyrics:\n", 1)[-1]
        is_repair = sum(1 for m in messages if m.get("role") == "user") > 1
        if mode == "invalid" or (mode == "invalid_once" and not is_repair):
            content = "Sure! Here is the analysis: {sentiment: positive, quality: "
        elif mode == "wrong_schema":
            content = json.dumps({"sentiment": "ecstatic", "quality": 42})
        else:
            content = json.dumps(label_for(lyrics))
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        usage = {
            "prompt_tokens": math.ceil(prompt_chars / 4),
            "completion_tokens": math.ceil(len(content) / 4),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return Handled.json(
            {
                "id": f"chatcmpl-{self.calls}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "test-model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": usage,
            }
        )
