"""Records as the ingest parsers hand them over: a validated ParsedRow or a BadRow with its reason.

Validation is shared by every format: a record (a dict of column → value) is split into TrackIn
fields and metadata, checked for size and encodability, then validated. Bad-row reasons name the
field and the problem, never the field's content: they end up in logs, the ledger and API
responses, and uploaded text is not ours to echo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from shared.models import TrackIn

__all__ = [
    "MAX_NESTING_DEPTH",
    "OPTIONAL_FIELDS",
    "REQUIRED_FIELDS",
    "TRACK_FIELDS",
    "BadRow",
    "ParsedRow",
    "check_and_validate",
    "to_track_fields",
    "validate_record",
]

REQUIRED_FIELDS: Final = ("artist", "title", "lyrics")
OPTIONAL_FIELDS: Final = ("source", "source_id")
TRACK_FIELDS: Final = frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS)
# How deep a record's JSON may nest (the record object is level 1). Deeper values are refused before
# anything recurses over them: the decoder, the size check, validation and the jsonb encoder all
# recurse per level and raise RecursionError near Python's limit (about 1,000), and ijson keeps one
# path prefix per open level, so its memory grows with the square of the depth.
MAX_NESTING_DEPTH: Final = 64


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """A record that validated. ``line`` is where it starts (1-based; the record index for ``.json``)."""

    line: int
    track: TrackIn


@dataclass(frozen=True, slots=True)
class BadRow:
    """A record that did not validate. ``reason`` names fields and problems, never their content."""

    line: int
    reason: str


def validate_record(line: int, record: dict[str, Any], renamed_id: bool) -> ParsedRow | BadRow:
    try:
        return ParsedRow(line, TrackIn.model_validate(record))
    except ValidationError as exc:
        return BadRow(line, _describe(exc, renamed_id))


def _describe(exc: ValidationError, renamed_id: bool) -> str:
    """Turn pydantic errors into a reason without the offending input (pydantic keeps it apart)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = err["loc"]
        field = str(loc[0]) if loc else "record"
        if field == "source_id" and renamed_id:
            field = "id"
        if err["type"] == "missing":
            problems.append(f"missing required field '{field}'")
        else:
            problems.append(f"field '{field}': {err['msg']}")
    return "; ".join(problems)


def to_track_fields(record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Split a flat record into TrackIn fields and metadata (mutates and reuses ``record``).

    ``id`` stands in for ``source_id`` unless both are present; then ``id`` stays metadata. A
    ``metadata`` object is merged into the metadata, its keys winning over same-named columns,
    because it is the more explicit of the two.
    """
    fields = {name: record.pop(name) for name in TRACK_FIELDS.intersection(record)}
    renamed_id = False
    if "id" in record and "source_id" not in fields:
        fields["source_id"] = record.pop("id")
        renamed_id = True
    # An optional field given as null means "not given"; TrackIn's defaults then apply.
    if fields.get("source", "") is None:
        del fields["source"]
    nested = record.get("metadata")
    if isinstance(nested, dict):
        del record["metadata"]
        record.update(nested)
    fields["metadata"] = record
    return fields, renamed_id


def _oversized_field(record: dict[str, Any], max_field_bytes: int) -> str | None:
    """Name of the first field whose UTF-8 size exceeds the cap, or None.

    A string of n characters has at most 4n UTF-8 bytes, so only strings longer than a quarter of the
    cap need encoding; containers (JSON metadata) are measured as compact JSON.
    """
    quick = max_field_bytes // 4
    for name, value in record.items():
        if isinstance(value, str):
            if len(value) > quick and len(value.encode("utf-8", "surrogatepass")) > max_field_bytes:
                return str(name)
        elif isinstance(value, dict | list):
            size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
            if size > max_field_bytes:
                return str(name)
    return None


def _unencodable_field(record: dict[str, Any]) -> str | None:
    """Name of the first field holding a lone UTF-16 surrogate (from a JSON escape), or None.

    PostgreSQL would refuse such text when the batch is written, failing every row beside it; the
    record is refused here instead.
    """
    for name, value in record.items():
        try:
            json.dumps({name: value}, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return str(name) if str(name).isprintable() else "a field name"
    return None


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def check_and_validate(line: int, record: Any, field_cap: int, surrogates: bool) -> ParsedRow | BadRow:
    """Validate one decoded JSON record; ``field_cap`` 0 skips the size check (the caller proved it moot)."""
    if not isinstance(record, dict):
        return BadRow(line, f"record is a JSON {_json_type(record)}, not an object")
    if surrogates and (name := _unencodable_field(record)) is not None:
        return BadRow(line, f"field '{name}' contains an unpaired UTF-16 surrogate escape")
    if field_cap and (name := _oversized_field(record, field_cap)) is not None:
        return BadRow(line, f"field '{name}' is longer than {field_cap} bytes")
    fields, renamed_id = to_track_fields(record)
    return validate_record(line, fields, renamed_id)
