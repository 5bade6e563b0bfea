"""JSON lines (``.jsonl``/``.ndjson``): one record per line; a line that is not a record is a bad row."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Final

from functions.ingest.parsing.lines import RECORD_CAP_FACTOR, Lines
from functions.ingest.parsing.rows import MAX_NESTING_DEPTH, BadRow, ParsedRow, check_and_validate

__all__ = ["iter_jsonl"]

# A JSON escape for a UTF-16 surrogate; only these can produce text that is not encodable as UTF-8.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> float:
    # Python's json accepts NaN and Infinity; PostgreSQL's jsonb does not, and would fail the batch.
    raise ValueError(f"{name} is not a JSON value")


_JSON_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


_TOO_DEEP: Final = f"not accepted JSON: nesting is deeper than {MAX_NESTING_DEPTH} levels"


def _nesting_depth(value: Any) -> int:
    """Depth of a decoded JSON value (a scalar is 0, ``[]`` is 1), walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_NESTING_DEPTH:
            break  # deep enough to refuse; no need to walk the rest
        stack.extend((child, level + 1) for child in children)
    return deepest


def iter_jsonl(
    stream: BinaryIO, max_field_bytes: int, max_record_bytes: int | None = None
) -> Iterator[ParsedRow | BadRow]:
    record_cap = max_record_bytes or max_field_bytes * RECORD_CAP_FACTOR
    lines = Lines(stream, record_cap, refuse_long=False, what="line")
    loads = _JSON_DECODER.decode
    for text in lines:
        line = lines.line_no
        if text is None:
            yield BadRow(line, f"line is longer than {record_cap} bytes")
            continue
        if not text.strip():
            continue
        try:
            record = loads(text)
        except json.JSONDecodeError as exc:
            yield BadRow(line, f"not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        except ValueError as exc:  # NaN or Infinity
            yield BadRow(line, f"not valid JSON: {exc}")
            continue
        except RecursionError:
            # The C decoder recurses once per level: a line of many thousand "[" ends here.
            yield BadRow(line, _TOO_DEEP)
            continue
        # Depth can't exceed the number of opening brackets, so only a line with many of them is walked.
        if text.count("{") + text.count("[") > MAX_NESTING_DEPTH and _nesting_depth(record) > MAX_NESTING_DEPTH:
            yield BadRow(line, _TOO_DEEP)
            continue
        # A decoded field can't be longer than the line that held it: skip the per-field check then.
        cap = max_field_bytes if len(text) * 4 > max_field_bytes else 0
        surrogates = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
        yield check_and_validate(line, record, cap, surrogates)
