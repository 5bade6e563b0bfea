"""The API client's NDJSON reader: whole lines out of chunks cut anywhere, as a network delivers them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from local.api_client import ndjson_lines
from local.read_commands import rows_of_lines
from shared.store.export import json_line


def test_lines_cut_across_chunks_come_out_whole_with_their_newlines() -> None:
    body = b'{"a": 1}\n{"b": "two\\nlines"}\n{"c": 3}\n'
    for size in (1, 2, 5, 7, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert list(ndjson_lines(iter(chunks))) == [b'{"a": 1}\n', b'{"b": "two\\nlines"}\n', b'{"c": 3}\n'], size


def test_a_last_line_without_its_newline_still_counts() -> None:
    assert list(ndjson_lines(iter([b'{"a": 1}\n{"b"', b": 2}"]))) == [b'{"a": 1}\n', b'{"b": 2}']


def test_rows_read_back_from_ndjson_write_the_same_lines_with_timestamps_as_datetimes() -> None:
    stamp = datetime(2026, 1, 31, 12, 30, 5, 123456, tzinfo=UTC)
    row = {"id": 7, "label": "FACE", "score": 0.5, "frame_ts": 1.0, "created_at": stamp, "stream_id": None}
    (back,) = rows_of_lines([json_line(row), b"\n"], "detections")
    assert back["created_at"] == stamp and isinstance(back["created_at"], datetime)
    assert json_line(back) == json_line(row) and json.loads(json_line(back))["frame_ts"] == 1.0
