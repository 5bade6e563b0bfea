"""``/objects?key=``: where is my file? The object's ingest outcome with its bad rows, then every
track (or the image) it produced through each stage, a page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from functions.api.errors import ApiError, not_found
from functions.api.paging import IdKey, decode_cursor, encode_cursor
from functions.api.routing import Call
from shared.store.trace import find_object_uris, trace_object

__all__ = ["ObjectTraceView", "object_trace"]


class _Answer(BaseModel):
    # Served as they are: a key the model does not declare is refused, not published undocumented.
    model_config = ConfigDict(extra="forbid")


class StageView(_Answer):
    state: Literal["done", "pending", "dead", "rejected"]
    at: datetime | None = None
    attempts: int | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None
    dead_job_id: int | None = None
    retryable: bool | None = None
    replayable: bool | None = None


class SubjectView(_Answer):
    kind: Literal["track", "image"]
    id: int
    label: str
    stages: dict[str, StageView]  # job kind (embed, enrich, analyze, detect) → state


class BadRowView(_Answer):
    line: int
    reason: str


class IngestView(_Answer):
    status: str
    attempts: int
    error: str | None
    finished_at: datetime | None
    rows_ok: int | None
    rows_bad: int | None
    bad_rows: list[BadRowView]  # the first ones, as many as the ingest reports


class ObjectTraceView(_Answer):
    object: str
    ingest: IngestView
    summary: dict[str, dict[str, int]]  # job kind → state → subjects, over every page
    items: list[SubjectView]
    next_cursor: str | None


# The cursor's list: an object's subjects in id order (the object itself is named by the query).
_SCOPE = "objects"


def object_trace(call: Call) -> ObjectTraceView:
    key: str = call.query["key"]
    bucket: str | None = call.query["bucket"]
    last = decode_cursor(call.query["cursor"], _SCOPE, IdKey)
    after = 0 if last is None else last.id
    with call.services.db.connection() as conn:
        uris = find_object_uris(conn, key, bucket)
        if len(uris) > 1:
            conn.commit()
            raise ApiError(409, "ambiguous", f"the key was ingested from {len(uris)} buckets; give bucket")
        trace = trace_object(conn, uris[0]) if uris else None
        conn.commit()
    if trace is None:
        raise not_found("object")
    doc = trace.as_dict()
    rest = [s for s in doc["subjects"] if s["id"] > after]
    page = rest[: call.query["limit"]]
    more = len(rest) > len(page)
    return ObjectTraceView(
        object=doc["object"],
        ingest=IngestView(**doc["ingest"]),
        summary=doc["summary"],
        items=[SubjectView(**s) for s in page],
        next_cursor=encode_cursor(_SCOPE, IdKey(id=page[-1]["id"])) if more and page else None,
    )
