"""What an analysis says about a track: the profile every analyzer produces, and its envelope."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["FIELDS", "Analysis", "Cost", "Profile", "Sentiment", "profile_json_schema"]

Sentiment = Literal["positive", "negative", "neutral", "mixed"]
FIELDS = ("sentiment", "themes", "complexity", "quality")


class Profile(BaseModel):
    """The structured output asked of every analyzer (and of the LLM, as a JSON schema)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sentiment: Sentiment
    sentiment_score: float = Field(ge=-1, le=1, description="-1 very negative .. 1 very positive")
    themes: list[str] = Field(max_length=5, description="up to five short theme labels, most salient first")
    complexity: float = Field(ge=0, le=1, description="0 simple .. 1 intricate (vocabulary, rhyme, structure)")
    quality: int = Field(ge=1, le=10, description="overall lyrical quality, 1 poor .. 10 outstanding")

    @field_validator("themes")
    @classmethod
    def _clean_themes(cls, value: list[str]) -> list[str]:
        out = []
        for theme in value:
            t = " ".join(str(theme).split()).lower()[:60]
            if t and t not in out:
                out.append(t)
        return out


def profile_json_schema() -> dict[str, Any]:
    """The JSON schema sent as ``response_format`` (strict mode wants every property required)."""
    schema = Profile.model_json_schema()
    schema["required"] = list(schema["properties"])
    schema["additionalProperties"] = False
    return schema


class Cost(BaseModel):
    model_config = ConfigDict(frozen=True)

    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0


class Analysis(BaseModel):
    """A profile plus where it came from and how sure the analyzer is."""

    model_config = ConfigDict(frozen=True)

    analyzer: str  # "rules" | "llm:<model>" | "distilled:<id>"
    prompt_version: str
    content_hash: str
    profile: Profile
    confidence: float = Field(ge=0, le=1)
    field_confidence: dict[str, float] = Field(default_factory=dict)
    fallback: bool = False
    fallback_reason: str | None = None
    cached: bool = False
    cost: Cost = Field(default_factory=Cost)
