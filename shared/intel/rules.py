"""Rule-based analyzers: cheap, deterministic, and honest about how sure they are.

Each field has its own analyzer returning (value, confidence). Confidence is high only where a rule
is a good judge: a strong lexicon signal for sentiment, many keywords of one theme for themes, a
degenerate text for quality (very short or one line repeated). Lyrical quality is otherwise a matter
of taste that counting cannot settle, so its confidence stays low and the router escalates.
"""

from __future__ import annotations

import re
from collections import Counter

from shared.intel.features import Features
from shared.intel.profile import Analysis, Profile, Sentiment

__all__ = ["RULES_VERSION", "THEME_KEYWORDS", "analyze_rules"]

RULES_VERSION = "rules-v1"
_WORD = re.compile(r"[a-z]+")

THEME_KEYWORDS: dict[str, frozenset[str]] = {
    name: frozenset(words.split())
    for name, words in {
        "ocean": "sea ocean tide tides wave waves sail sails sailor sailors harbor harbour shore ship ships "
        "gulls seagulls salt mast coastline bay quay anchor whale deck rigging bosun fishing",
        "heartbreak": "heart broken heartbreak goodbye tears cry crying leave left lonely miss ex "
        "lies lied cheat promise promises apart gone ring kiss",
        "city nightlife": "city neon streets street downtown club clubs taxi subway skyline midnight "
        "lights bar bars avenue sirens rooftop alley",
        "war and protest": "war soldier soldiers battle gun guns bomb bombs march protest flag fight "
        "army freedom enemy rifle trenches peace riot",
        "faith and gospel": "lord god jesus pray prayer praying faith heaven grace glory amen church "
        "hallelujah soul salvation holy savior spirit",
        "rural farm life": "farm barn field fields tractor harvest corn wheat cattle cows porch "
        "dirt fence creek hay plow country acres",
        "space and astronomy": "stars star moon planet planets galaxy orbit rocket cosmos comet "
        "astronaut nebula sky universe satellite gravity mars",
        "partying and dancing": "dance dancing party floor beat music dj groove bass tonight "
        "drinks shots club move hands jump",
        "grief and loss": "grave funeral mourning grief gone loss lost memory memories ghost "
        "tomb angel rest remember died death",
        "money and hustle": "money cash hustle grind rich dollar dollars bills paid bank stack "
        "stacks boss deal deals gold chains",
        "winter and holidays": "snow winter christmas holiday holidays fireplace frost cold sleigh "
        "december mistletoe presents carols tree ice",
        "road trips and cars": "road highway car cars engine wheel miles drive driving gas "
        "interstate mile route dashboard radio tires",
    }.items()
}


def _sentiment(f: Features) -> tuple[Sentiment, float, float]:
    score = f.sentiment
    signal = f.positive_words + f.negative_words
    if f.positive_words >= 3 and f.negative_words >= 3 and abs(score) < 0.5:
        label: Sentiment = "mixed"
    elif score >= 0.3:
        label = "positive"
    elif score <= -0.3:
        label = "negative"
    else:
        label = "neutral"
    # Strong, consistent lexicon evidence makes a confident call; a few words do not.
    evidence = min(1.0, signal / 8)
    confidence = 0.35 + 0.55 * evidence * min(1.0, abs(score) / 0.6 if label != "mixed" else 0.7)
    return label, round(score, 4), round(confidence, 3)


def _themes(lyrics: str) -> tuple[list[str], float]:
    tokens = _WORD.findall(lyrics.lower())
    hits: Counter[str] = Counter()
    for word in tokens:
        for theme, words in THEME_KEYWORDS.items():
            if word in words:
                hits[theme] += 1
    if not hits:
        return [], 0.2
    ranked = hits.most_common()
    top = ranked[0][1]
    second = ranked[1][1] if len(ranked) > 1 else 0
    themes = [t for t, n in ranked if n >= max(2, top * 0.5)][:3] or [ranked[0][0]]
    dominance = (top - second) / top
    confidence = min(0.95, 0.3 + 0.05 * min(top, 8) + 0.3 * dominance)
    return themes, round(confidence, 3)


def _complexity(f: Features) -> tuple[float, float]:
    diversity = min(1.0, max(0.0, (f.mattr - 0.5) / 0.4))
    syllabic = min(1.0, max(0.0, (f.syllables_per_word - 1.0) / 0.8))
    repetition = f.repeated_line_ratio
    value = 0.5 * diversity + 0.3 * syllabic + 0.2 * (1 - repetition)
    # A measurement of the text itself: the rule is a fair judge of this one.
    return round(min(1.0, max(0.0, value)), 3), 0.75


def _quality(f: Features) -> tuple[int, float]:
    if f.words < 12 or f.lines < 3:
        return 1, 0.9  # not a lyric
    if f.mattr < 0.25 or f.repeated_line_ratio > 0.9:
        return 2, 0.85  # one line over and over
    craft = (
        0.35 * min(1.0, f.mattr / 0.85)
        + 0.25 * f.rhyme_density
        + 0.2 * (1 - f.repeated_line_ratio)
        + 0.2 * min(1.0, f.words / 120)
    )
    return max(1, min(10, round(1 + 9 * craft))), 0.4


def analyze_rules(lyrics: str, features: Features, content_hash: str) -> Analysis:
    sentiment, score, c_sent = _sentiment(features)
    themes, c_themes = _themes(lyrics)
    complexity, c_complex = _complexity(features)
    quality, c_quality = _quality(features)
    field_conf = {"sentiment": c_sent, "themes": c_themes, "complexity": c_complex, "quality": c_quality}
    return Analysis(
        analyzer="rules",
        prompt_version=RULES_VERSION,
        content_hash=content_hash,
        profile=Profile(
            sentiment=sentiment, sentiment_score=score, themes=themes, complexity=complexity, quality=quality
        ),
        confidence=min(field_conf.values()),
        field_confidence=field_conf,
    )
