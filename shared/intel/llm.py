"""The LLM analyzer: any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Asks for JSON-schema structured output, validates the answer with pydantic, and on an invalid
answer makes exactly one repair request (the bad answer and the validation error sent back). Every
attempt reserves its worst-case tokens from the daily budget first and reports its real usage and
cost afterwards, whether or not it produced a profile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from shared.intel.budget import Reservation, worst_case_tokens
from shared.intel.profile import Cost, Profile, profile_json_schema
from shared.net.client import SafeHttpClient
from shared.net.errors import OutboundError, UpstreamRejected, UpstreamUnavailable
from shared.observability import span
from shared.observability.traces import SpanKind

__all__ = [
    "PROMPTS",
    "Attempt",
    "LlmAnalyzer",
    "LlmBudgetSpent",
    "LlmError",
    "LlmInvalidOutput",
    "LlmResult",
    "LlmUnavailable",
]

PROMPTS: dict[str, str] = {
    "v1": (
        "You are a music analyst. Read the song and describe it as JSON matching the given schema: "
        "overall sentiment (positive, negative, neutral or mixed) with a score from -1 to 1; up to five "
        "short theme labels, most salient first; complexity from 0 (simple) to 1 (intricate vocabulary, "
        "rhyme and structure); and lyrical quality as an integer from 1 (poor) to 10 (outstanding). "
        "Judge the words only. Reply with the JSON object and nothing else."
    ),
}
_MAX_LYRIC_CHARS = 6000


@dataclass(frozen=True)
class Attempt:
    outcome: str  # ok | invalid | error
    tokens_in: int
    tokens_out: int
    cost_usd: float
    duration_ms: float


class LlmError(Exception):
    """Base of the LLM analyzer's failures; ``attempts`` lists the calls made (for the cost ledger)."""

    attempts: list[Attempt]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.attempts = []


class LlmUnavailable(LlmError):
    """The endpoint did not answer usefully (429, 5xx, timeout, refused); counts against the breaker."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LlmInvalidOutput(LlmError):
    """The model answered, twice, with something that is not a valid profile."""


class LlmBudgetSpent(LlmError):
    """Today's token budget cannot cover another call."""


@dataclass
class LlmResult:
    profile: Profile
    cost: Cost
    attempts: list[Attempt] = field(default_factory=list)


Reserve = Callable[[int], Reservation | None]
Settle = Callable[[Reservation, int], None]


class LlmAnalyzer:
    def __init__(
        self,
        http: SafeHttpClient,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        prompt_version: str,
        max_output_tokens: int,
        timeout_s: float,
        price_in_per_mtok: float,
        price_out_per_mtok: float,
    ) -> None:
        if prompt_version not in PROMPTS:
            raise ValueError(f"no prompt for version {prompt_version!r}")
        self.http = http
        self.url = base_url.rstrip("/") + (
            "/chat/completions" if base_url.rstrip("/").endswith("/v1") else "/v1/chat/completions"
        )
        self.model = model
        self.api_key = api_key
        self.prompt_version = prompt_version
        self.max_output_tokens = max_output_tokens
        self.timeout_s = timeout_s
        self.price_in = price_in_per_mtok
        self.price_out = price_out_per_mtok

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def messages(self, artist: str, title: str, lyrics: str) -> list[dict[str, str]]:
        song = f"Artist: {artist or 'unknown'}\nTitle: {title or 'untitled'}\nLyrics:\n{lyrics[:_MAX_LYRIC_CHARS]}"
        return [{"role": "system", "content": PROMPTS[self.prompt_version]}, {"role": "user", "content": song}]

    def analyze(self, artist: str, title: str, lyrics: str, *, reserve: Reserve, settle: Settle) -> LlmResult:
        """One profile, with at most one repair request. Raises LlmUnavailable, LlmInvalidOutput,
        LlmBudgetSpent; ``result.attempts`` (or the exception's ``attempts``) feed the cost ledger."""
        messages = self.messages(artist, title, lyrics)
        attempts: list[Attempt] = []
        try:
            content = self._call(messages, attempts, reserve, settle)
            try:
                profile = _parse(content)
            except ValueError as first_error:
                repair = [
                    *messages,
                    {"role": "assistant", "content": content[:2000]},
                    {
                        "role": "user",
                        "content": f"That reply was not valid for the schema ({first_error}). "
                        "Reply again with only the JSON object.",
                    },
                ]
                content = self._call(repair, attempts, reserve, settle, after_invalid=True)
                try:
                    profile = _parse(content)
                except ValueError as exc:
                    attempts[-1] = _as_invalid(attempts[-1])
                    raise LlmInvalidOutput(f"invalid output after one repair: {exc}") from None
        except LlmError as exc:
            exc.attempts = attempts
            raise
        cost = Cost(
            tokens_in=sum(a.tokens_in for a in attempts),
            tokens_out=sum(a.tokens_out for a in attempts),
            usd=round(sum(a.cost_usd for a in attempts), 8),
        )
        return LlmResult(profile, cost, attempts)

    def _call(
        self,
        messages: list[dict[str, str]],
        attempts: list[Attempt],
        reserve: Reserve,
        settle: Settle,
        *,
        after_invalid: bool = False,
    ) -> str:
        if after_invalid and attempts:
            attempts[-1] = _as_invalid(attempts[-1])
        reservation = reserve(worst_case_tokens(messages, self.max_output_tokens))
        if reservation is None:
            raise LlmBudgetSpent("daily LLM token budget spent")
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_output_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "track_profile", "strict": True, "schema": profile_json_schema()},
            },
        }
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        started = time.perf_counter()
        used = 0
        try:
            with span("llm chat completion", kind=SpanKind.CLIENT, attributes={"gen_ai.request.model": self.model}):
                result = self.http.post(
                    self.url,
                    json_body=body,
                    headers=headers,
                    timeout_s=self.timeout_s,
                    max_retries=0,
                    max_bytes=1 << 20,
                )
            doc = result.json()
            usage = doc.get("usage") or {}
            t_in, t_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            used = t_in + t_out
            content = doc["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not text")
        except UpstreamUnavailable as exc:
            # A timed-out call may still have been billed: count the whole reservation.
            used = reservation.tokens if exc.status is None else 0
            attempts.append(Attempt("error", 0, 0, 0.0, _ms(started)))
            raise LlmUnavailable(str(exc), exc.retry_after_s) from None
        except (UpstreamRejected, OutboundError) as exc:
            attempts.append(Attempt("error", 0, 0, 0.0, _ms(started)))
            raise LlmUnavailable(str(exc)) from None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            attempts.append(Attempt("invalid", 0, 0, 0.0, _ms(started)))
            raise LlmUnavailable("endpoint answered outside the chat completions format") from None
        finally:
            settle(reservation, used)
        cost = (t_in * self.price_in + t_out * self.price_out) / 1_000_000
        attempts.append(Attempt("ok", t_in, t_out, round(cost, 8), _ms(started)))
        return content


def _parse(content: str) -> Profile:
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        raise ValueError("not JSON") from None
    try:
        return Profile.model_validate(doc)
    except ValidationError as exc:
        fields = ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "?" for e in exc.errors()}))
        raise ValueError(f"schema mismatch at {fields}") from None


def _as_invalid(a: Attempt) -> Attempt:
    return Attempt("invalid", a.tokens_in, a.tokens_out, a.cost_usd, a.duration_ms)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
