"""Algorithmic features of a lyric: syllables and rhyme (CMU dictionary), lexicon sentiment, lexical
diversity, repetition and chorus detection, explicitness, structure.

Pure functions of the text: the same lyric always gives the same features, so they are computed
wherever needed (enrich stores them; analyze recomputes them for ad-hoc text).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass

from shared.intel.lexicons import EXPLICIT_WORDS, pronunciations, valences

__all__ = ["FEATURES_VERSION", "FEATURE_NAMES", "Features", "compute_features", "rhyme_key", "syllables"]

FEATURES_VERSION = "features-v1"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_VOWELS = re.compile(r"[aeiouy]+")
_NEGATIONS = frozenset({"not", "no", "never", "nothing", "nobody", "none", "nor", "cannot", "without"})
_MATTR_WINDOW = 50


@dataclass(frozen=True)
class Features:
    words: int
    lines: int
    stanzas: int
    unique_words: int
    type_token_ratio: float
    mattr: float  # moving-average type-token ratio (window 50): diversity that does not fall with length
    words_per_line: float
    syllables_per_word: float
    syllables_per_line: float
    rhyme_density: float  # share of lines whose end word rhymes with one of the two lines before
    sentiment: float  # -1 .. 1, VADER-style normalised sum of valences (negation flips)
    sentiment_coverage: float  # share of words found in the lexicon
    positive_words: int
    negative_words: int
    repeated_line_ratio: float
    chorus_lines: int  # lines of the longest block repeated at least twice
    chorus_repeats: int
    explicit_words: int
    explicit: bool
    cmu_coverage: float

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)

    def vector(self) -> list[float]:
        """The numeric features in ``FEATURE_NAMES`` order, scaled to roughly unit range."""
        d = self.as_dict()
        return [float(d[name]) / _SCALE.get(name, 1.0) for name in FEATURE_NAMES]


FEATURE_NAMES = (
    "words",
    "lines",
    "type_token_ratio",
    "mattr",
    "words_per_line",
    "syllables_per_word",
    "rhyme_density",
    "sentiment",
    "sentiment_coverage",
    "repeated_line_ratio",
    "chorus_lines",
    "explicit_words",
)
_SCALE = {"words": 200.0, "lines": 40.0, "words_per_line": 10.0, "syllables_per_word": 2.0, "chorus_lines": 8.0}


def _heuristic_syllables(word: str) -> int:
    groups = len(_VOWELS.findall(word))
    if word.endswith("e") and not word.endswith(("le", "ee")) and groups > 1:
        groups -= 1
    return max(1, groups)


def syllables(word: str) -> int:
    pron = pronunciations().get(word)
    return pron.syllables if pron else _heuristic_syllables(word)


def rhyme_key(word: str) -> str:
    """What must match for two words to rhyme: CMU phones from the last stressed vowel, or the
    spelling from the last vowel group for words the dictionary lacks."""
    pron = pronunciations().get(word)
    if pron:
        return pron.rhyme
    m = list(_VOWELS.finditer(word))
    return "~" + (word[m[-1].start() :] if m else word)


def _mattr(tokens: list[str]) -> float:
    if not tokens:
        return 0.0
    if len(tokens) <= _MATTR_WINDOW:
        return len(set(tokens)) / len(tokens)
    counts = Counter(tokens[:_MATTR_WINDOW])
    total = len(counts)
    for i in range(_MATTR_WINDOW, len(tokens)):
        out, inn = tokens[i - _MATTR_WINDOW], tokens[i]
        counts[out] -= 1
        if counts[out] == 0:
            del counts[out]
        counts[inn] += 1
        total += len(counts)
    return total / ((len(tokens) - _MATTR_WINDOW + 1) * _MATTR_WINDOW)


def _sentiment(tokens: list[str]) -> tuple[float, float, int, int]:
    lexicon = valences()
    total, found, pos, neg = 0.0, 0, 0, 0
    for i, word in enumerate(tokens):
        value = lexicon.get(word)
        if value is None:
            continue
        found += 1
        window = tokens[max(0, i - 3) : i]
        if any(w in _NEGATIONS or w.endswith("n't") for w in window):
            value *= -0.74  # VADER's negation scalar
        total += value
        if value > 0:
            pos += 1
        elif value < 0:
            neg += 1
    score = total / math.sqrt(total * total + 15) if found else 0.0
    return score, found / len(tokens) if tokens else 0.0, pos, neg


def _chorus(lines: list[str]) -> tuple[int, int]:
    """The longest block of consecutive lines (2..8) that occurs at least twice, and how often."""
    best = (0, 0)
    for size in range(2, min(8, len(lines) // 2) + 1):
        blocks = Counter(tuple(lines[i : i + size]) for i in range(len(lines) - size + 1))
        block, count = blocks.most_common(1)[0] if blocks else ((), 0)
        if count >= 2 and all(block):
            best = (size, count)
    return best


def _rhyme_density(end_words: list[str]) -> float:
    if len(end_words) < 2:
        return 0.0
    keys = [rhyme_key(w) for w in end_words]
    hits = 0
    for i in range(1, len(keys)):
        for j in range(max(0, i - 2), i):
            if keys[i] == keys[j] and end_words[i] != end_words[j]:
                hits += 1
                break
    return hits / (len(keys) - 1)


def compute_features(lyrics: str) -> Features:
    raw_lines = [line.strip() for line in lyrics.replace("\r\n", "\n").split("\n")]
    stanzas = len([s for s in re.split(r"\n\s*\n", lyrics.strip()) if s.strip()])
    lines = [line for line in raw_lines if line]
    norm_lines = [" ".join(_WORD.findall(line.lower())) for line in lines]
    tokens = _WORD.findall(lyrics.lower())
    n = len(tokens)
    prons = pronunciations()
    syl = [syllables(w) for w in tokens]
    end_words = [nl.split()[-1] for nl in norm_lines if nl]
    score, coverage, pos, neg = _sentiment(tokens)
    line_counts = Counter(norm_lines)
    repeated = sum(1 for nl in norm_lines if nl and line_counts[nl] >= 2)
    chorus_lines, chorus_repeats = _chorus(norm_lines)
    explicit = sum(1 for w in tokens if w in EXPLICIT_WORDS)
    return Features(
        words=n,
        lines=len(lines),
        stanzas=stanzas,
        unique_words=len(set(tokens)),
        type_token_ratio=round(len(set(tokens)) / n, 4) if n else 0.0,
        mattr=round(_mattr(tokens), 4),
        words_per_line=round(n / len(lines), 3) if lines else 0.0,
        syllables_per_word=round(sum(syl) / n, 3) if n else 0.0,
        syllables_per_line=round(sum(syl) / len(lines), 3) if lines else 0.0,
        rhyme_density=round(_rhyme_density(end_words), 4),
        sentiment=round(score, 4),
        sentiment_coverage=round(coverage, 4),
        positive_words=pos,
        negative_words=neg,
        repeated_line_ratio=round(repeated / len(lines), 4) if lines else 0.0,
        chorus_lines=chorus_lines,
        chorus_repeats=chorus_repeats,
        explicit_words=explicit,
        explicit=explicit > 0,
        cmu_coverage=round(sum(1 for w in tokens if w in prons) / n, 4) if n else 0.0,
    )
