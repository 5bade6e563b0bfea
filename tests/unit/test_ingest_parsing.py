"""The ingest parser: formats, mapping to TrackIn, bad rows with their lines, whole-file refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from functions.ingest.parsing import BadRow, ParsedRow, detect_format, iter_rows
from local.datagen import write_tracks
from shared.errors import FileRejected, UnsupportedObject

CAP = 4096
BOM = b"\xef\xbb\xbf"


def parse(data: bytes, fmt: str, *, cap: int = CAP) -> list[ParsedRow | BadRow]:
    return list(iter_rows(io.BytesIO(data), fmt, max_field_bytes=cap))  # type: ignore[arg-type]


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def track(**extra: object) -> dict[str, object]:
    return {"artist": "Saltglass", "title": "Evening Tide", "lyrics": "carry me home", **extra}


def good(rows: list[ParsedRow | BadRow]) -> list[ParsedRow]:
    return [r for r in rows if isinstance(r, ParsedRow)]


def bad(rows: list[ParsedRow | BadRow]) -> list[BadRow]:
    return [r for r in rows if isinstance(r, BadRow)]


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, like a slow socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data[self._pos : self._pos + min(self._step, size if size >= 0 else self._step)]
        self._pos += len(chunk)
        return chunk


# --- detect_format ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "fmt"),
    [
        ("incoming/tracks.jsonl", "jsonl"),
        ("TRACKS.JSONL", "jsonl"),
        ("a/b.ndjson", "jsonl"),
        ("x.Csv", "csv"),
        ("dump.v2.json", "json"),
    ],
)
def test_detect_format_maps_extension_case_insensitively(key: str, fmt: str) -> None:
    # GIVEN an object key WHEN its format is detected THEN the extension decides, whatever its case
    assert detect_format(key) == fmt


@pytest.mark.parametrize(
    ("key", "named"), [("tracks.jsonl.gz", "'.gz'"), ("notes.txt", "'.txt'"), ("README", "no ext")]
)
def test_detect_format_refuses_other_extensions_naming_it_and_the_accepted_ones(key: str, named: str) -> None:
    # GIVEN a key with an unsupported or no extension
    # WHEN its format is detected
    with pytest.raises(UnsupportedObject) as err:
        detect_format(key)
    # THEN the message names the extension and every accepted one
    message = str(err.value)
    assert named in message
    for accepted in (".jsonl", ".ndjson", ".csv", ".json"):
        assert accepted in message


# --- mapping -----------------------------------------------------------------------------------------


def test_jsonl_id_becomes_source_id_and_extra_columns_keep_json_types_in_metadata() -> None:
    # GIVEN a record with an integer id and extra columns of several JSON types
    data = jsonl(track(id=42, genre="folk", year=1999, tags=["sea"], live=False))
    # WHEN parsed
    [row] = parse(data, "jsonl")
    # THEN id is the source_id and every other column is metadata with its JSON type
    assert isinstance(row, ParsedRow)
    assert row.track.source_id == "42"
    assert row.track.metadata == {"genre": "folk", "year": 1999, "tags": ["sea"], "live": False}


def test_source_id_wins_over_id_which_then_goes_to_metadata() -> None:
    # GIVEN a record with both source_id and id
    [row] = parse(jsonl(track(source_id="abc", id=7, source="genius")), "jsonl")
    # THEN source_id and source are taken as given and id is kept as metadata
    assert isinstance(row, ParsedRow)
    assert (row.track.source, row.track.source_id) == ("genius", "abc")
    assert row.track.metadata == {"id": 7}


def test_csv_extra_columns_go_to_metadata_as_strings_and_id_to_source_id() -> None:
    # GIVEN a CSV with capitalised known headers, an id column and extra columns
    data = b"ID,Artist,Title,Lyrics,genre,year\r\n9,Saltglass,Evening Tide,carry me home,folk,1999\r\n"
    # WHEN parsed
    [row] = parse(data, "csv")
    # THEN the known columns are matched and the rest is metadata, as strings
    assert isinstance(row, ParsedRow)
    assert row.track.source_id == "9"
    assert row.track.artist == "Saltglass"
    assert row.track.metadata == {"genre": "folk", "year": "1999"}


def test_metadata_object_is_merged_into_metadata() -> None:
    [row] = parse(jsonl(track(genre="folk", metadata={"mood": "calm"})), "jsonl")
    assert isinstance(row, ParsedRow)
    assert row.track.metadata == {"genre": "folk", "mood": "calm"}


# --- encoding and line handling ---------------------------------------------------------------------


def test_jsonl_with_bom_parses_its_first_line() -> None:
    # GIVEN a jsonl file saved with a UTF-8 byte order mark
    rows = parse(BOM + jsonl(track(), track(title="Low Tide")), "jsonl")
    # THEN the first record is read as line 1 like any other
    assert [(r.line, r.track.title) for r in good(rows)] == [(1, "Evening Tide"), (2, "Low Tide")]


def test_csv_with_bom_still_finds_the_artist_column() -> None:
    # GIVEN a CSV from a spreadsheet: BOM before the first header name
    rows = parse(BOM + b"artist,title,lyrics\nSaltglass,Evening Tide,carry me home\n", "csv")
    # THEN the header is recognised and the row is good
    assert [r.line for r in good(rows)] == [2]


def test_csv_multiline_quoted_field_keeps_newlines_and_later_lines_are_counted() -> None:
    # GIVEN a CSV whose lyrics span three lines, followed by a bad row
    data = b'artist,title,lyrics\nSaltglass,Evening Tide,"carry me home\non the evening tide\nwhere the gulls ride"\nonly,two\n'
    # WHEN parsed
    rows = parse(data, "csv")
    # THEN the lyrics keep their line breaks and the next record starts at line 5
    assert good(rows)[0].track.lyrics == "carry me home\non the evening tide\nwhere the gulls ride"
    assert [(r.line, r.reason) for r in bad(rows)] == [(5, "row has 2 cells; the header has 3")]


def test_windows_and_old_mac_line_endings_are_lines_too() -> None:
    # GIVEN the same records ended by CRLF and by lone CR (old Mac spreadsheet exports)
    for eol in (b"\r\n", b"\r"):
        data = eol.join([b"artist,title,lyrics", b"a,b,c", b"d,e,f", b""])
        # THEN both rows are read, at lines 2 and 3
        assert [r.line for r in good(parse(data, "csv"))] == [2, 3]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_tiny_reads_give_the_same_rows_as_whole_reads(fmt: str) -> None:
    # GIVEN a file with a BOM, CRLF endings, a multiline CSV field and multibyte text
    if fmt == "csv":
        data = BOM + b'artist,title,lyrics\r\nA\xc3\xa9,T,"one\r\ntwo"\r\n\r\nB,T2,three\r\n'
    else:
        records = [track(artist="Aé"), track(title="T2")]
        body = jsonl(*records).replace(b"\n", b"\r\n") if fmt == "jsonl" else json.dumps(records).encode()
        data = BOM + body
    expected = parse(data, fmt)
    # WHEN the stream hands out 1 to 5 bytes per read
    for step in range(1, 6):
        rows = list(iter_rows(Trickle(data, step), fmt, max_field_bytes=CAP))  # type: ignore[arg-type]
        # THEN the rows and their lines are the same
        assert rows == expected
    assert len(good(expected)) == 2


@pytest.mark.parametrize(
    ("fmt", "data", "where"),
    [
        ("jsonl", jsonl(track()) + b'{"artist": "caf\xe9"}\n', "line 2 (byte offset"),
        ("csv", b"artist,title,lyrics\na,b,c\nd,\xff,f\n", "line 3 (byte offset 28)"),
        ("json", b'[{"artist": "a", "title": "\xc3(", "lyrics": "l"}]', "line 1 (byte offset 27)"),
    ],
)
def test_file_that_is_not_utf8_is_refused_naming_where(fmt: str, data: bytes, where: str) -> None:
    # GIVEN a file with a byte sequence that is not UTF-8 (Latin-1 export, binary junk)
    # WHEN parsed
    with pytest.raises(FileRejected) as err:
        parse(data, fmt)
    # THEN the whole file is refused, naming the line and byte offset
    assert "not valid UTF-8" in str(err.value)
    assert where in str(err.value)


# --- field sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_very_long_field_under_the_cap_is_accepted(fmt: str) -> None:
    # GIVEN lyrics of 600 kB, above the csv module's default field limit, under a 1 MiB cap
    lyrics = ("la " * 200_000).strip()
    if fmt == "csv":
        data = b'artist,title,lyrics\na,b,"' + lyrics.encode() + b'"\n'
    elif fmt == "jsonl":
        data = jsonl(track(lyrics=lyrics))
    else:
        data = json.dumps([track(lyrics=lyrics)]).encode()
    # WHEN parsed THEN the record is good and intact
    [row] = parse(data, fmt, cap=1 << 20)
    assert isinstance(row, ParsedRow)
    assert len(row.track.lyrics) == len(lyrics)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_field_over_the_cap_is_a_bad_row_and_parsing_continues(fmt: str) -> None:
    # GIVEN a record whose lyrics are 1,200 characters but 2,400 UTF-8 bytes, over a 2,000-byte cap
    long_lyrics = "é" * 1200
    records = [track(lyrics=long_lyrics), track(title="After")]
    if fmt == "csv":
        data = (
            "artist,title,lyrics\n" + "".join(f"{r['artist']},{r['title']},{r['lyrics']}\n" for r in records)
        ).encode()
    elif fmt == "jsonl":
        data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
    else:
        data = json.dumps(records).encode()
    # WHEN parsed with the cap
    rows = parse(data, fmt, cap=2000)
    # THEN that record is bad, naming the field and the cap, and the next one is good
    first_line = 2 if fmt == "csv" else 1
    assert bad(rows) == [BadRow(first_line, "field 'lyrics' is longer than 2000 bytes")]
    assert [r.track.title for r in good(rows)] == ["After"]


def test_jsonl_line_far_beyond_the_cap_is_skipped_as_a_bad_row() -> None:
    # GIVEN a jsonl line many times the per-field cap, between two good lines
    data = jsonl(track()) + b'{"lyrics": "' + b"x" * 200_000 + b'"}\n' + jsonl(track(title="After"))
    # WHEN parsed with a 4 kB cap
    rows = parse(data, "jsonl")
    # THEN it is one bad row at line 2 and parsing resumes on line 3
    assert [(r.line, type(r).__name__) for r in rows] == [(1, "ParsedRow"), (2, "BadRow"), (3, "ParsedRow")]


def test_csv_unterminated_quote_refuses_the_file() -> None:
    # GIVEN a CSV where a quote opened on line 3 never closes (truncated or unbalanced)
    data = b'artist,title,lyrics\na,b,c\nd,e,"never closed\nmore text\n'
    # WHEN parsed THEN the file is refused naming where the record started
    with pytest.raises(FileRejected, match="record starting at line 3"):
        parse(data, "csv")


# --- whole-file refusals ------------------------------------------------------------------------------


def test_csv_header_without_lyrics_is_refused_naming_the_column() -> None:
    # GIVEN a CSV whose header lacks the lyrics column
    with pytest.raises(FileRejected) as err:
        parse(b"artist,title,genre\na,b,c\n", "csv")
    # THEN the message names the missing column
    assert "lyrics" in str(err.value)
    assert "artist" not in str(err.value)


def test_csv_without_a_header_is_refused() -> None:
    with pytest.raises(FileRejected, match="no header"):
        parse(b"\n\n", "csv")


def test_json_array_of_tracks_is_parsed_with_record_indexes() -> None:
    # GIVEN a .json array with a good record, a non-object and a record missing lyrics
    data = json.dumps([track(id="x1", year=2001), "oops", {"artist": "a", "title": "t"}], indent=2).encode()
    # WHEN parsed
    rows = parse(data, "json")
    # THEN line is the 1-based record index, and numbers keep their type
    assert rows[0] == ParsedRow(1, rows[0].track)  # type: ignore[union-attr]
    assert rows[0].track.metadata == {"year": 2001}  # type: ignore[union-attr]
    assert rows[1:] == [
        BadRow(2, "record is a JSON string, not an object"),
        BadRow(3, "missing required field 'lyrics'"),
    ]


def test_json_object_with_tracks_array_is_parsed() -> None:
    # GIVEN an object with a tracks array and other top-level members around it
    data = json.dumps({"exported": "2024-06-01", "tracks": [track(), track(title="B")], "count": 2}).encode()
    # WHEN parsed THEN both tracks are yielded
    assert [r.track.title for r in good(parse(data, "json"))] == ["Evening Tide", "B"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'{"items": []}', "no 'tracks' array"),
        (b'{"tracks": {"item": {"artist": "a", "title": "t", "lyrics": "l"}}}', "not an array"),
        (b'"just a string"', "not an array"),
        (b"   ", "empty"),
    ],
)
def test_json_of_the_wrong_shape_is_refused(data: bytes, needle: str) -> None:
    # GIVEN a JSON document that is neither an array nor an object with a tracks array
    # WHEN parsed THEN the whole file is refused, saying so
    with pytest.raises(FileRejected, match=needle):
        parse(data, "json")


def test_truncated_json_is_refused_after_the_records_it_yielded() -> None:
    # GIVEN a .json array cut off in its second record
    data = json.dumps([track(), track(title="B")]).encode()[:-20]
    rows: list[ParsedRow | BadRow] = []
    # WHEN parsed
    with pytest.raises(FileRejected, match="truncated") as err:
        rows.extend(iter_rows(io.BytesIO(data), "json", max_field_bytes=CAP))
    # THEN the first record came through and the error does not quote the input
    assert [r.line for r in rows] == [1]
    assert "Evening" not in str(err.value) and "right here" not in str(err.value)


# --- bad rows -------------------------------------------------------------------------------------------


def test_bad_rows_are_reported_with_their_lines_while_good_rows_are_yielded() -> None:
    # GIVEN a jsonl file mixing good records, blank lines and every kind of row problem
    lines = [
        json.dumps(track(title="one")),  # 1 good
        "",  # 2 blank: skipped
        '{"artist": "a", "title": ',  # 3 not JSON
        "[1, 2]",  # 4 not an object
        json.dumps({"artist": "a", "title": "t"}),  # 5 lyrics missing
        json.dumps(track(artist="   ")),  # 6 artist blank
        json.dumps(track(title=12)),  # 7 wrong type
        "   ",  # 8 blank: skipped
        json.dumps(track(title="two")),  # 9 good
        json.dumps(track(id=True)),  # 10 id of the wrong type
        '{"artist": "a", "title": "t", "lyrics": "l", "score": NaN}',  # 11 NaN is not JSON
    ]
    # WHEN parsed
    rows = parse("\n".join(lines).encode(), "jsonl")
    # THEN good rows keep their lines and each bad row names its line, field and problem
    assert [(r.line, r.track.title) for r in good(rows)] == [(1, "one"), (9, "two")]
    reasons = {r.line: r.reason for r in bad(rows)}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 10, 11]
    assert reasons[3].startswith("not valid JSON")
    assert reasons[4] == "record is a JSON array, not an object"
    assert reasons[5] == "missing required field 'lyrics'"
    assert reasons[6] == "field 'artist': String should have at least 1 character"
    assert reasons[7] == "field 'title': Input should be a valid string"
    assert reasons[10].startswith("field 'id':")
    assert reasons[11] == "not valid JSON: NaN is not a JSON value"


def test_csv_rows_with_extra_or_missing_cells_are_bad_rows() -> None:
    # GIVEN a CSV with a row missing a cell, a good row and a row with one cell too many
    data = b"artist,title,lyrics\na,b\nc,d,e\nf,g,h,i\n"
    rows = parse(data, "csv")
    # THEN the short and long rows are bad at their lines and the good one is kept
    assert [r.line for r in good(rows)] == [3]
    assert bad(rows) == [
        BadRow(2, "row has 2 cells; the header has 3"),
        BadRow(4, "row has 4 cells; the header has 3"),
    ]


def test_bad_row_reasons_never_echo_field_content() -> None:
    # GIVEN records whose refused values carry a marker
    marker = "SECRET-LYRIC-TEXT"
    data = (
        jsonl(
            {"artist": marker * 40, "title": "t", "lyrics": "l"},  # artist over 500 characters
            {"artist": "a", "title": [marker], "lyrics": "l"},  # wrong type
            {"artist": "a", "title": "t", "lyrics": marker + "\u0000"},  # NUL character
        )
        + b'{"artist": "'
        + marker.encode()
        + b'"\n'
    )  # not JSON
    # WHEN parsed
    rows = parse(data, "jsonl", cap=1 << 20)
    # THEN every row is bad and no reason contains the content
    assert len(bad(rows)) == 4
    assert all(marker not in r.reason for r in bad(rows))


def test_unpaired_surrogate_escape_is_a_bad_row() -> None:
    # GIVEN a jsonl record whose lyrics hold a lone UTF-16 surrogate escape, which PostgreSQL refuses
    data = b'{"artist": "a", "title": "t", "lyrics": "\\ud800"}\n' + jsonl(track())
    rows = parse(data, "jsonl")
    # THEN that record is bad and the next is good
    assert bad(rows) == [BadRow(1, "field 'lyrics' contains an unpaired UTF-16 surrogate escape")]
    assert len(good(rows)) == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_generated_file_with_ten_percent_bad_rows_yields_exactly_the_good_count(tmp_path: Path, fmt: str) -> None:
    # GIVEN a generated file of 2,000 rows, 10% of them made to fail validation
    path = tmp_path / f"tracks.{fmt}"
    written = write_tracks(path, 2000, seed=3, fmt=fmt, bad_fraction=0.1)  # type: ignore[arg-type]
    assert (written.good, written.bad) == (1800, 200)
    # WHEN parsed
    with path.open("rb") as stream:
        rows = list(iter_rows(stream, detect_format(path.name), max_field_bytes=1 << 20))
    # THEN exactly the good rows are yielded and every bad one is reported
    assert len(good(rows)) == written.good
    assert len(bad(rows)) == written.bad


# --- nesting depth --------------------------------------------------------------------------------------


def nested(depth: int) -> object:
    """A JSON value ``depth`` levels deep: lists inside lists around one string."""
    value: object = "core"
    for _ in range(depth):
        value = [value]
    return value


def test_jsonl_line_of_a_hundred_thousand_open_brackets_is_a_bad_row_between_good_ones() -> None:
    # GIVEN a good line, a line of 100,000 "[" and another good line
    data = jsonl(track(title="One")) + b"[" * 100_000 + b"\n" + jsonl(track(title="Two"))
    # WHEN parsed with the default field cap (the line is well under the record cap)
    rows = parse(data, "jsonl", cap=1 << 20)
    # THEN both good lines are kept and the deep line is a bad row that names the problem
    assert [r.track.title for r in good(rows)] == ["One", "Two"]
    [deep] = bad(rows)
    assert deep.line == 2
    assert "nesting is deeper than 64 levels" in deep.reason


def test_jsonl_balanced_nesting_deep_enough_for_the_recursion_limit_is_a_bad_row() -> None:
    # GIVEN a well-formed line nesting 100,000 deep (the decoder alone would raise RecursionError)
    data = b"[" * 100_000 + b"]" * 100_000 + b"\n" + jsonl(track())
    # WHEN parsed
    rows = parse(data, "jsonl", cap=1 << 20)
    # THEN it is a bad row and the next line still parses
    assert [r.line for r in bad(rows)] == [1]
    assert "nesting" in bad(rows)[0].reason
    assert [r.line for r in good(rows)] == [2]


@pytest.mark.parametrize(("metadata_depth", "accepted"), [(63, True), (64, False), (500, False)])
def test_jsonl_record_nesting_is_accepted_up_to_64_levels(metadata_depth: int, accepted: bool) -> None:
    # GIVEN a record whose metadata value nests ``metadata_depth`` levels below the record object,
    # so the record is metadata_depth + 1 levels deep (below Python's recursion limit in every case)
    data = jsonl(track(tags=nested(metadata_depth)))
    # WHEN parsed
    [row] = parse(data, "jsonl")
    # THEN a record up to 64 levels is kept whole, a deeper one is a bad row
    if accepted:
        assert isinstance(row, ParsedRow)
        assert row.track.metadata["tags"] == nested(metadata_depth)
    else:
        assert isinstance(row, BadRow)
        assert "nesting is deeper than 64 levels" in row.reason


def test_jsonl_record_with_many_brackets_but_shallow_nesting_is_accepted() -> None:
    # GIVEN lyrics full of section markers and a wide (not deep) metadata list
    lyrics = " ".join(["[Chorus] {x}"] * 200)
    data = jsonl(track(lyrics=lyrics, tags=[[i] for i in range(200)]))
    # WHEN parsed
    [row] = parse(data, "jsonl", cap=1 << 20)
    # THEN the record is kept: only depth, not the number of brackets, refuses a record
    assert isinstance(row, ParsedRow)
    assert row.track.lyrics == lyrics


@pytest.mark.parametrize("wrap", ["array", "object"])
def test_json_element_nesting_a_hundred_thousand_deep_refuses_the_file_from_that_record(wrap: str) -> None:
    # GIVEN a JSON document whose second record nests 100,000 deep (ijson alone would need memory
    # growing with the square of the depth, many gigabytes here)
    deep = b'{"artist": "a", "title": "t", "lyrics": "l", "tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    records = json.dumps(track()).encode() + b"," + deep
    data = b"[" + records + b"]" if wrap == "array" else b'{"tracks": [' + records + b"]}"
    # WHEN parsed
    rows: list[ParsedRow | BadRow] = []
    with pytest.raises(FileRejected) as err:
        rows.extend(iter_rows(io.BytesIO(data), "json", max_field_bytes=1 << 20))
    # THEN the first record was yielded and the refusal names the deep record and the limit
    assert [r.line for r in good(rows)] == [1]
    assert "record 2 nests deeper than 64 levels" in str(err.value)


def test_json_array_of_open_brackets_only_is_refused_as_too_deep() -> None:
    # GIVEN a .json upload of 100,000 "[" and nothing else
    # WHEN parsed THEN it is refused for its depth, not left to exhaust memory or recursion
    with pytest.raises(FileRejected, match="nests deeper than 64 levels"):
        parse(b"[" * 100_000, "json")


@pytest.mark.parametrize(("metadata_depth", "accepted"), [(63, True), (64, False)])
def test_json_record_nesting_is_accepted_up_to_64_levels(metadata_depth: int, accepted: bool) -> None:
    # GIVEN a JSON array holding one record whose metadata nests ``metadata_depth`` below the record
    data = json.dumps([track(tags=nested(metadata_depth))]).encode()
    # WHEN parsed THEN a record up to 64 levels deep is kept, a deeper one refuses the file
    if accepted:
        [row] = parse(data, "json")
        assert isinstance(row, ParsedRow)
        assert row.track.metadata["tags"] == nested(metadata_depth)
    else:
        with pytest.raises(FileRejected, match="record 1 nests deeper"):
            parse(data, "json")


def test_csv_cell_of_a_hundred_thousand_brackets_is_plain_text() -> None:
    # GIVEN a CSV whose extra column holds 100,000 "[" (CSV cells are never decoded as JSON)
    data = b"artist,title,lyrics,notes\r\nSaltglass,Evening Tide,carry me home," + b"[" * 100_000 + b"\r\n"
    # WHEN parsed
    [row] = parse(data, "csv", cap=1 << 20)
    # THEN the row is kept with the cell as a string
    assert isinstance(row, ParsedRow)
    assert row.track.metadata == {"notes": "[" * 100_000}


# --- record size ----------------------------------------------------------------------------------


def _parse_json_measuring_peak(data: bytes, record_cap: int) -> tuple[list[ParsedRow | BadRow], str, int]:
    """Parse a ``.json`` document with tracemalloc on; the rows yielded, the refusal and the peak bytes."""
    import tracemalloc

    stream = io.BytesIO(data)  # made before tracing: the document itself is not the parser's memory
    rows: list[ParsedRow | BadRow] = []
    refusal = ""
    tracemalloc.start()
    try:
        try:
            rows.extend(iter_rows(stream, "json", max_field_bytes=1 << 20, max_record_bytes=record_cap))
        except FileRejected as exc:
            refusal = str(exc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return rows, refusal, peak


@pytest.mark.parametrize("shape", ["many values", "one string"])
def test_json_record_far_over_the_record_cap_refuses_the_file_with_memory_bounded_by_the_cap(shape: str) -> None:
    # GIVEN a .json array whose second of three records holds 40 MiB (each field under the field cap,
    # or one huge string), with a record cap of 1 MiB
    big = 40 << 20
    if shape == "many values":
        payload = json.dumps(track(tags=["x" * 1000] * (big // 1004))).encode()
    else:
        payload = json.dumps(track(lyrics="y" * big)).encode()
    data = b"[" + json.dumps(track()).encode() + b"," + payload + b"," + json.dumps(track()).encode() + b"]"
    # WHEN parsed with the memory it allocates traced
    rows, refusal, peak = _parse_json_measuring_peak(data, 1 << 20)
    # THEN the first record stands, the file is refused from the big one, naming it and the cap,
    # and the parse never held more than a few times the cap (the whole record would be 40 MiB+)
    assert [r.line for r in good(rows)] == [1]
    assert refusal == "JSON record 2 is larger than 1048576 bytes; the file is refused from there"
    assert peak < 8 << 20, peak


def test_json_records_under_the_record_cap_are_all_kept_however_many_pieces_they_span() -> None:
    # GIVEN records just under a 256 KiB cap, larger than one read of the parser (64 KiB), in an
    # object's tracks array
    records = [track(lyrics=f"{i} " + "z" * (250 << 10)) for i in range(5)]
    data = json.dumps({"source": "s", "tracks": records}).encode()
    # WHEN parsed with that cap
    rows = list(iter_rows(io.BytesIO(data), "json", max_field_bytes=1 << 20, max_record_bytes=256 << 10))
    # THEN every record is kept whole
    assert [r.line for r in good(rows)] == [1, 2, 3, 4, 5]
    assert [r.track.lyrics[:2] for r in good(rows)] == ["0 ", "1 ", "2 ", "3 ", "4 "]


def test_jsonl_line_over_the_record_cap_is_a_bad_row_between_good_ones() -> None:
    # GIVEN a .jsonl file whose middle line is over a 64 KiB record cap but each field under the field cap
    data = jsonl(track(), track(tags=["t" * 1000] * 100), track())
    # WHEN parsed with that record cap
    rows = list(iter_rows(io.BytesIO(data), "jsonl", max_field_bytes=1 << 20, max_record_bytes=64 << 10))
    # THEN the record cap, not 16 times the field cap, makes it a bad row, and the others are kept
    assert [r.line for r in good(rows)] == [1, 3]
    assert [(r.line, r.reason) for r in bad(rows)] == [(2, "line is longer than 65536 bytes")]
