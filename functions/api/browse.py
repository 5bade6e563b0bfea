"""``GET /tracks``: the catalogue filtered by what was learned about each track, in pages."""

from __future__ import annotations

from functions.api.errors import bad_param
from functions.api.filters import FILTER_PARAMS, bad_cursor, track_filter
from functions.api.params import Param
from functions.api.routing import Call
from shared.store.browse import SORTS, BadCursor, TrackPage, browse_tracks

__all__ = ["BROWSE_PARAMS", "list_tracks"]

BROWSE_PARAMS: tuple[Param, ...] = (
    *FILTER_PARAMS,
    Param("sort", str, default="newest", maximum=16, description=f"order: {', '.join(SORTS)}"),
    Param("limit", int, default=50, maximum=500, description="tracks per page"),
    Param("cursor", str, maximum=400, description="next_cursor of the previous page"),
)


def list_tracks(call: Call) -> TrackPage:
    sort = call.query["sort"]
    if sort not in SORTS:
        raise bad_param("sort", f"must be one of {', '.join(SORTS)}")
    flt = track_filter(call.query)
    with call.services.db.connection() as conn:
        try:
            page = browse_tracks(conn, flt, sort=sort, limit=call.query["limit"], cursor=call.query["cursor"])
        except BadCursor as exc:
            raise bad_cursor(exc) from None
        finally:
            conn.commit()
    return page
