"""``/objects?key=``: where is my file? The object's ingest outcome with its bad rows, then every
track (or the image) it produced through each stage, a page at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from functions.api.errors import ApiError, bad_param, not_found
from functions.api.routing import Call
from shared.store.trace import find_object_uris, trace_object

__all__ = ["ObjectTraceView", "object_trace"]


class StageView(BaseModel):
    state: Literal["done", "pending", "dead", "rejected"]
    at: datetime | None = None
    attempts: int | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None
    dead_job_id: int | None = None
    retryable: bool | None = None
    replayable: bool | None = None


class SubjectView(BaseModel):
    kind: Literal["track", "image"]
    id: int
    label: str
    stages: dict[str, StageView]  # job kind (embed, enrich, analyze, detect) → state


class BadRowView(BaseModel):
    line: int
    reason: str


class IngestView(BaseModel):
    status: str
    attempts: int
    error: str | None
    finished_at: datetime | None
    rows_ok: int | None
    rows_bad: int | None
    bad_rows: list[BadRowView]  # the first ones, as many as the ingest reports


class ObjectTraceView(BaseModel):
    object: str
    ingest: IngestView
    summary: dict[str, dict[str, int]]  # job kind → state → subjects, over every page
    items: list[SubjectView]
    next_cursor: str | None


def object_trace(call: Call) -> ObjectTraceView:
    key: str = call.query["key"]
    bucket: str | None = call.query["bucket"]
    cursor = call.query["cursor"]
    after = 0
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 18:
            raise bad_param("cursor", "is not a cursor this route returned")
        after = int(cursor)
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
        next_cursor=str(page[-1]["id"]) if more and page else None,
    )
