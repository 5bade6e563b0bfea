"""Track data for demos, tests and benchmarks: the sample file and a synthetic generator.

Both draw on one bank of original lyric lines written for this project, grouped by theme (the sea,
heartbreak, city nights, ...), so that semantic search over the output has real structure: a query
about the sea should find the ocean songs. The bank holds, per theme, song titles with a two-line
chorus and rhymed verse couplets; songs are assembled as verse, chorus, verse, chorus.

``generate_tracks`` is deterministic for a seed and cheap (benchmarks ask for a million rows), and
``write_tracks`` can salt a file with rows that must fail validation, recording exactly how many good
rows it wrote so tests can check the ingest count to the row.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

__all__ = [
    "SAMPLE_PATH",
    "THEMES",
    "Theme",
    "WriteResult",
    "generate_tracks",
    "sample_tracks",
    "write_sample",
    "write_tracks",
]

SAMPLE_PATH: Final = Path(__file__).parent / "data" / "sample_tracks.jsonl"
CSV_COLUMNS: Final = ("id", "artist", "title", "lyrics", "genre", "year", "theme")


@dataclass(frozen=True, slots=True)
class Theme:
    """One subject of songs: its genres, fictional artists, titled choruses and verse couplets."""

    name: str
    genres: tuple[str, ...]
    artists: tuple[str, ...]
    songs: tuple[tuple[str, str, str], ...]  # (title, chorus line 1, chorus line 2)
    couplets: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What ``write_tracks`` wrote: rows that validate (``good``) and rows made to fail (``bad``)."""

    good: int
    bad: int

    @property
    def rows(self) -> int:
        return self.good + self.bad


BANK_RESOURCE: Final = "lyric_bank.json"


def _load_themes() -> tuple[Theme, ...]:
    """The lyric bank, read from the package data: a data file, not code, so it is edited as data."""
    text = resources.files("local").joinpath("data", BANK_RESOURCE).read_text(encoding="utf-8")
    return tuple(
        Theme(
            name=theme["name"],
            genres=tuple(theme["genres"]),
            artists=tuple(theme["artists"]),
            songs=tuple((title, first, second) for title, first, second in theme["songs"]),
            couplets=tuple((first, second) for first, second in theme["couplets"]),
        )
        for theme in json.loads(text)["themes"]
    )


THEMES: Final[tuple[Theme, ...]] = _load_themes()


# --- the sample file -----------------------------------------------------------------------------


def sample_tracks() -> Iterator[dict[str, Any]]:
    """The sample data set: every titled song of every theme, in a fixed order.

    Each song is verse (two couplets), chorus, verse, chorus, and for a third of them a bridge couplet
    and a last chorus: 12 or 16 lines. Artist, genre and year are spread across the theme's lists.
    """
    rng = random.Random(20240611)  # noqa: S311 - reproducible data, not secrets
    for theme in THEMES:
        slug = theme.name.split()[0]
        for number, (title, *chorus) in enumerate(theme.songs, start=1):
            verses = rng.sample(theme.couplets, 5)
            lines = [*verses[0], *verses[1], *chorus, *verses[2], *verses[3], *chorus]
            if number % 3 == 0:
                lines += [*verses[4], *chorus]
            yield {
                "id": f"sample-{slug}-{number:02d}",
                "artist": theme.artists[(number - 1) % len(theme.artists)],
                "title": title,
                "lyrics": "\n".join(lines),
                "genre": theme.genres[(number - 1) % len(theme.genres)],
                "year": rng.randrange(1965, 2025),
                "theme": theme.name,
            }


def write_sample(path: Path = SAMPLE_PATH) -> int:
    """Regenerate the committed sample file; returns the number of tracks written."""
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for track in sample_tracks():
            out.write(json.dumps(track, ensure_ascii=False) + "\n")
            count += 1
    return count


# --- synthetic tracks ----------------------------------------------------------------------------

# fmt: off
_FIRST_NAMES: Final = (
    "Ada", "Beau", "Cass", "Dara", "Eli", "Faye", "Gus", "Hana", "Ivo", "June", "Kit", "Lena", "Milo", "Nell",
    "Otis", "Pia", "Quinn", "Rosa", "Sol", "Tess", "Uma", "Vic", "Wren", "Xavi", "Yara", "Zed",
)
_LAST_NAMES: Final = (
    "Abbott", "Barlow", "Castell", "Dunmore", "Ellery", "Farrow", "Gable", "Hartley", "Ives", "Jessop", "Kestrel",
    "Lowry", "Marchetti", "Norwood", "Okafor", "Pryce", "Quill", "Rowan", "Sato", "Thorne", "Underhill", "Vance",
    "Whitlock", "Yoon",
)
_BAND_ADJECTIVES: Final = (
    "Velvet", "Hollow", "Electric", "Silver", "Paper", "Golden", "Wandering", "Midnight", "Rusty", "Crystal",
    "Northern", "Lucky", "Painted", "Restless", "Quiet", "Burning",
)
_BAND_NOUNS: Final = (
    "Foxes", "Lanterns", "Rivers", "Sparrows", "Engines", "Kings", "Ghosts", "Pilots", "Orchards", "Wolves",
    "Comets", "Saints", "Tigers", "Echoes", "Anchors", "Bells",
)
# fmt: on
_TITLE_SUFFIXES: Final = ("", "", "", "", "", " (Live)", " (Acoustic)", " (Remix)", " Part II", " (Reprise)")


def _artist_names() -> tuple[str, ...]:
    solo = [f"{first} {last}" for first in _FIRST_NAMES for last in _LAST_NAMES]
    bands = [f"The {adjective} {noun}" for adjective in _BAND_ADJECTIVES for noun in _BAND_NOUNS]
    return tuple(solo + bands)


_ARTISTS: Final = _artist_names()


def generate_tracks(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` synthetic tracks, identical for the same ``(n, seed)``; ids are unique within a seed.

    A track has a theme, one of that theme's choruses and two to five verse couplets (about 45 to
    115 words); one in five borrows a couplet from another theme, so neighbourhoods in embedding
    space overlap the way real catalogues do. Metadata: ``genre``, ``year`` and ``theme``.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    rand, randrange, sample = rng.random, rng.randrange, rng.sample
    themes = THEMES
    theme_count = len(themes)
    artists, artist_count = _ARTISTS, len(_ARTISTS)
    suffixes = _TITLE_SUFFIXES
    for index in range(n):
        theme = themes[randrange(theme_count)]
        title, chorus_a, chorus_b = theme.songs[randrange(len(theme.songs))]
        verses = sample(theme.couplets, 2 + randrange(4))
        if rand() < 0.2:
            other = themes[randrange(theme_count)]
            verses[-1] = other.couplets[randrange(len(other.couplets))]
        lines = [line for couplet in verses[:2] for line in couplet]
        lines += (chorus_a, chorus_b)
        lines += [line for couplet in verses[2:] for line in couplet]
        yield {
            "id": f"syn{seed}-{index}",
            "artist": artists[randrange(artist_count)],
            "title": title + suffixes[randrange(len(suffixes))],
            "lyrics": "\n".join(lines),
            "genre": theme.genres[randrange(len(theme.genres))],
            "year": 1960 + randrange(65),
            "theme": theme.name,
        }


# --- files, optionally salted with bad rows ------------------------------------------------------

TrackFileFormat = Literal["jsonl", "csv", "json"]

# Ways a row is made to fail validation, per format. A CSV cell has no type and a JSON array
# element must stay parseable, so each format gets the failures it can express.
_BAD_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "jsonl": ("missing_lyrics", "empty_artist", "invalid_json", "wrong_type", "not_an_object"),
    "json": ("missing_lyrics", "empty_artist", "wrong_type", "not_an_object"),
    "csv": ("missing_lyrics", "empty_artist", "blank_title", "short_row"),
}


def _spoil(track: dict[str, Any], kind: str) -> Any:
    """A copy of ``track`` that fails validation in the way ``kind`` names."""
    if kind == "missing_lyrics":
        return {key: value for key, value in track.items() if key != "lyrics"}
    if kind == "empty_artist":
        return {**track, "artist": ""}
    if kind == "blank_title":
        return {**track, "title": "   "}
    if kind == "wrong_type":
        return {**track, "title": 404}
    if kind == "not_an_object":
        return [track["artist"], track["title"]]
    raise ValueError(f"unknown kind {kind!r}")


def write_tracks(
    path: Path,
    n: int,
    seed: int = 0,
    fmt: TrackFileFormat = "jsonl",
    *,
    bad_fraction: float = 0.0,
) -> WriteResult:
    """Write ``n`` rows of ``generate_tracks(n, seed)`` to ``path`` as jsonl, csv or a json array.

    With ``bad_fraction`` f, exactly ``floor(n * f)`` rows, spread evenly, are replaced by rows that
    fail validation (the kinds rotate: missing lyrics, empty artist, invalid JSON, wrong type, ...).
    The result counts what was written, so ``result.good`` is what an ingest must accept.
    """
    if not 0.0 <= bad_fraction <= 1.0:
        raise ValueError("bad_fraction must be between 0 and 1")
    if fmt not in _BAD_KINDS:
        raise ValueError(f"unknown format {fmt!r}")
    kinds = _BAD_KINDS[fmt]
    good = bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = _RowWriter(out, fmt)
        for index, track in enumerate(generate_tracks(n, seed)):
            # Row i is bad when floor((i + 1) * f) steps past floor(i * f): exact count, evenly spread.
            if bad_fraction and int((index + 1) * bad_fraction) > int(index * bad_fraction):
                writer.write_bad(track, kinds[bad % len(kinds)])
                bad += 1
            else:
                writer.write(track)
                good += 1
        writer.close()
    return WriteResult(good=good, bad=bad)


class _RowWriter:
    """Serialises rows in one format; JSON arrays need separators between, and a closing bracket."""

    def __init__(self, out: Any, fmt: TrackFileFormat) -> None:
        self._out = out
        self._fmt = fmt
        self._first = True
        self._csv = csv.writer(out) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)
        elif fmt == "json":
            out.write("[\n")

    def _write_json(self, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False)
        if self._fmt == "jsonl":
            self._out.write(text + "\n")
        else:
            self._out.write(text if self._first else ",\n" + text)
            self._first = False

    def write(self, track: dict[str, Any]) -> None:
        if self._csv is not None:
            self._csv.writerow([track[column] for column in CSV_COLUMNS])
        else:
            self._write_json(track)

    def write_bad(self, track: dict[str, Any], kind: str) -> None:
        if self._csv is not None:
            if kind == "short_row":
                self._csv.writerow([track["id"], track["artist"], track["title"]])
            else:
                row = {**track, "lyrics": ""} if kind == "missing_lyrics" else _spoil(track, kind)
                self._csv.writerow([row[column] for column in CSV_COLUMNS])
        elif kind == "invalid_json":
            # A record cut off mid-string: the line is not JSON at all.
            self._out.write(json.dumps(track, ensure_ascii=False)[:40] + "\n")
        else:
            self._write_json(_spoil(track, kind))

    def close(self) -> None:
        if self._fmt == "json":
            self._out.write("\n]\n")


if __name__ == "__main__":
    print(f"wrote {write_sample()} tracks to {SAMPLE_PATH.name}")
