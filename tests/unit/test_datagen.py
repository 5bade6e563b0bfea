"""The sample data set and the synthetic track generator."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from functions.ingest.parsing import BadRow, ParsedRow, iter_rows
from local.datagen import SAMPLE_PATH, THEMES, WriteResult, generate_tracks, sample_tracks, write_tracks

SEA_WORDS = ("sea", "ocean", "tide", "harbor", "sail", "wave", "ship", "boat", "shore", "quay", "mast", "bay")


def test_sample_file_has_at_least_240_valid_tracks_over_at_least_10_themes() -> None:
    # GIVEN the committed sample file
    # WHEN it is parsed like an upload
    with SAMPLE_PATH.open("rb") as stream:
        rows = list(iter_rows(stream, "jsonl", max_field_bytes=1 << 20))
    # THEN every row is valid, ids are unique and the themes are many
    assert not [r for r in rows if isinstance(r, BadRow)]
    tracks = [r.track for r in rows if isinstance(r, ParsedRow)]
    assert len(tracks) >= 240
    assert len({t.source_id for t in tracks}) == len(tracks)
    themes = Counter(t.metadata["theme"] for t in tracks)
    assert len(themes) >= 10
    assert min(themes.values()) >= 15


def test_sample_tracks_look_like_songs_with_genre_and_year() -> None:
    # GIVEN the committed sample file
    tracks = [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()]
    for t in tracks:
        # THEN each has 8 to 20 lyric lines, a genre and a plausible year
        assert 8 <= len(t["lyrics"].split("\n")) <= 20
        assert t["genre"] and 1950 <= t["year"] <= 2025
    # AND several fictional artists per theme
    per_theme: dict[str, set[str]] = {}
    for t in tracks:
        per_theme.setdefault(t["theme"], set()).add(t["artist"])
    assert all(len(artists) >= 3 for artists in per_theme.values())


def test_ocean_songs_use_the_vocabulary_of_the_sea() -> None:
    # GIVEN the ocean songs of the sample WHEN their lyrics are read THEN each speaks of the sea
    ocean = [t for t in sample_tracks() if t["theme"] == "ocean"]
    assert len(ocean) >= 15
    for t in ocean:
        assert any(word in t["lyrics"].lower() for word in SEA_WORDS), t["id"]


def test_committed_sample_file_matches_the_generator() -> None:
    # GIVEN the generator of the sample WHEN compared with the committed file THEN they agree
    committed = [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()]
    assert committed == list(sample_tracks())


def test_generate_tracks_is_deterministic_per_seed() -> None:
    # GIVEN two runs with one seed and one with another
    first, again, other = (list(generate_tracks(300, seed=s)) for s in (5, 5, 6))
    # THEN the same seed gives the same tracks and another seed different ones
    assert first == again
    assert first != other


def test_generated_ids_are_unique_and_lyrics_stay_short_enough_to_embed() -> None:
    # GIVEN 5,000 generated tracks
    tracks = list(generate_tracks(5000, seed=1))
    # THEN ids are unique, lyrics are about 40-120 words and every theme appears
    assert len({t["id"] for t in tracks}) == 5000
    words = [len(t["lyrics"].split()) for t in tracks]
    assert min(words) >= 35 and max(words) <= 120
    assert {t["theme"] for t in tracks} == {theme.name for theme in THEMES}
    assert all(t["artist"] and t["title"] and isinstance(t["year"], int) for t in tracks)


def test_generate_tracks_zero_is_empty_and_negative_is_refused() -> None:
    assert list(generate_tracks(0)) == []
    with pytest.raises(ValueError):
        list(generate_tracks(-1))


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_write_tracks_without_bad_rows_writes_n_good_rows(tmp_path: Path, fmt: str) -> None:
    # GIVEN a request for 500 clean rows WHEN written and parsed back
    path = tmp_path / f"t.{fmt}"
    result = write_tracks(path, 500, seed=2, fmt=fmt)  # type: ignore[arg-type]
    with path.open("rb") as stream:
        rows = list(iter_rows(stream, fmt, max_field_bytes=1 << 20))  # type: ignore[arg-type]
    # THEN all 500 are good and carry the generated ids in order
    assert result == WriteResult(good=500, bad=0)
    assert [r.track.source_id for r in rows if isinstance(r, ParsedRow)] == [f"syn2-{i}" for i in range(500)]


def test_write_tracks_bad_rows_are_of_assorted_kinds(tmp_path: Path) -> None:
    # GIVEN a jsonl file of 100 rows with 10% bad rows
    path = tmp_path / "t.jsonl"
    result = write_tracks(path, 100, bad_fraction=0.1)
    with path.open("rb") as stream:
        reasons = [r.reason for r in iter_rows(stream, "jsonl", max_field_bytes=1 << 20) if isinstance(r, BadRow)]
    # THEN exactly 10 rows are bad and they fail in several different ways
    assert result.rows == 100 and result.bad == 10
    assert len(reasons) == 10
    kinds = {reason.split(":")[0] for reason in reasons}
    assert len(kinds) >= 4


def test_write_tracks_refuses_a_fraction_outside_zero_to_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_tracks(tmp_path / "t.jsonl", 10, bad_fraction=1.5)
