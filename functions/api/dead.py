"""``/dead-jobs``: what failed for good, its error and job, replayed once fixed or deleted.

The cloud databases are private, so this is how an operator reaches the dead-letter store there;
``contentfn dead`` does the same from a shell that reaches the database. Replayed jobs of the kinds
the API publishes (``CONTENTFN_QUEUES``) are relayed after the request, the others by the next
producer of their kind.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from functions.api.errors import ApiError, not_found
from functions.api.paging import IdKey, decode_cursor, encode_cursor
from functions.api.params import json_body
from functions.api.routing import Call
from shared.queue.dead import REPLAYABLE_KINDS, dead_job, dead_jobs, purge_dead, replay_dead

__all__ = [
    "DeadJob",
    "DeadJobAnswer",
    "DeadJobDeleted",
    "DeadJobPage",
    "ReplayAnswer",
    "ReplayRequest",
    "dead_delete",
    "dead_detail",
    "dead_index",
    "dead_replay",
]

_MAX_IDS = 1000
_MAX_BODY = 32 * 1024  # 1,000 ids of up to 19 digits fit


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(default_factory=list, max_length=_MAX_IDS)
    kind: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=100, ge=1, le=_MAX_IDS)

    @model_validator(mode="after")
    def _one_selection(self) -> ReplayRequest:
        if bool(self.ids) == (self.kind is not None):
            raise ValueError("ids or kind, not both")
        return self


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeadJob(_Answer):
    id: int
    job_id: int | None = Field(description="the queued job's id; null for an event that failed before it was a job")
    kind: str
    payload: dict[str, Any]
    dedup_key: str | None
    attempts: int
    last_error: str
    retryable: bool
    created_at: str
    died_at: str
    replayable: bool


class DeadJobPage(_Answer):
    items: list[DeadJob]
    next_cursor: str | None
    total: int = Field(description="dead jobs matching the filter, on every page")


class DeadJobAnswer(_Answer):
    dead_job: DeadJob


class ReplayAnswer(_Answer):
    replayed: list[int]
    already_queued: list[int]
    not_replayable: dict[str, str] = Field(description="dead job id -> why it stays")
    kinds: dict[str, int] = Field(description="replayed jobs per kind")


class DeadJobDeleted(_Answer):
    deleted: int


def dead_index(call: Call) -> DeadJobPage:
    """Newest first; a full page carries the cursor of its last (oldest) dead job."""
    kind, limit = call.query["kind"], call.query["limit"]
    after = decode_cursor(call.query["cursor"], "dead_jobs", IdKey)
    with call.services.db.connection() as conn:
        rows = dead_jobs(conn, kind=kind, before=None if after is None else after.id, limit=limit)
        total = conn.execute(
            "SELECT count(*) FROM dead_jobs WHERE %(kind)s::text IS NULL OR kind = %(kind)s", {"kind": kind}
        ).fetchone()
        conn.commit()
    full = len(rows) == limit
    return DeadJobPage.model_validate(
        {
            "items": rows,
            "total": int(total[0]) if total else 0,
            "next_cursor": encode_cursor("dead_jobs", IdKey(id=rows[-1]["id"])) if full else None,
        }
    )


def dead_detail(call: Call) -> DeadJobAnswer:
    with call.services.db.connection() as conn:
        row = dead_job(conn, call.id)
        conn.commit()
    if row is None:
        raise not_found("dead job")
    return DeadJobAnswer.model_validate({"dead_job": row})


def dead_replay(call: Call) -> ReplayAnswer:
    services = call.services
    body = json_body(call.request, ReplayRequest, what="replay request (ids or kind, limit)", max_bytes=_MAX_BODY)
    if body.kind is not None and body.kind not in REPLAYABLE_KINDS:
        raise ApiError(400, "invalid_body", f"kind must be one of {', '.join(REPLAYABLE_KINDS)}")
    with services.db.connection() as conn:
        report = replay_dead(
            conn,
            ids=body.ids,
            kind=body.kind,
            limit=len(body.ids) if body.ids else body.limit,
            max_attempts=services.settings.queue_max_attempts,
        )
        conn.commit()
    return ReplayAnswer.model_validate(report.as_dict())


def dead_delete(call: Call) -> DeadJobDeleted:
    dead_id = call.id
    with call.services.db.connection() as conn:
        deleted = purge_dead(conn, ids=[dead_id])
        conn.commit()
    if not deleted:
        raise not_found("dead job")
    return DeadJobDeleted(deleted=dead_id)
