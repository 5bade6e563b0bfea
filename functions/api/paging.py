"""The one pagination convention of every list route: keyset pages behind an opaque cursor.

A list answers ``{"items": [...], "next_cursor": str | null}``; the next page is asked for with
``?cursor=<next_cursor>`` (and the same filters and ``limit``). The cursor is the URL-safe base64 of
a small JSON object: the list it belongs to and the sort key of the last item served. It is opaque
to clients (its content may change) but validated on the way back in: a cursor that is not ours,
belongs to another list or has the wrong key is a 400 naming ``cursor``, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.api.errors import bad_param
from functions.api.params import Param

__all__ = ["CURSOR", "IdKey", "cursor_param", "decode_cursor", "encode_cursor"]

_K = TypeVar("_K", bound=BaseModel)

# Sort keys are an id or a timestamp: a few dozen bytes encoded; the bound keeps parsing cheap.
_MAX_CURSOR = 256


def cursor_param(maximum: int = _MAX_CURSOR) -> Param:
    """The ``cursor`` parameter of a list; a list sorted by a text (a title) needs a larger bound,
    since the cursor carries the last item's whole sort key."""
    return Param("cursor", str, maximum=maximum, description="next_cursor of the previous page (opaque)")


CURSOR = cursor_param()


class IdKey(BaseModel):
    """The sort key of a list ordered by id (newest first)."""

    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1, le=2**63 - 1)


def encode_cursor(scope: str, key: BaseModel) -> str:
    """The cursor after an item of list ``scope`` whose sort key is ``key``."""
    # Not ASCII-escaped: a text key of non-Latin script stays at most 4 bytes a character, not 12.
    raw = json.dumps({"on": scope, **key.model_dump(mode="json")}, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str | None, scope: str, key: type[_K]) -> _K | None:
    """The sort key in ``cursor`` (None without one); refuses what :func:`encode_cursor` for ``scope`` did not make."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value: Any = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad_param("cursor", "is not a cursor this API issued") from None
    if not isinstance(value, dict) or value.pop("on", None) != scope:
        raise bad_param("cursor", "belongs to another list") from None
    try:
        return key.model_validate(value)
    except ValidationError:
        raise bad_param("cursor", "is not a cursor this API issued") from None
