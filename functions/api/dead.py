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
from functions.api.params import json_body
from functions.api.routing import Call
from shared.queue.dead import REPLAYABLE_KINDS, dead_job, dead_jobs, purge_dead, replay_dead

__all__ = ["ReplayRequest", "dead_delete", "dead_detail", "dead_index", "dead_replay"]

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


def dead_index(call: Call) -> dict[str, Any]:
    kind, before, limit = call.query["kind"], call.query["before"], call.query["limit"]
    with call.services.db.connection() as conn:
        rows = dead_jobs(conn, kind=kind, before=before, limit=limit)
        total = conn.execute(
            "SELECT count(*) FROM dead_jobs WHERE %(kind)s::text IS NULL OR kind = %(kind)s", {"kind": kind}
        ).fetchone()
        conn.commit()
    return {
        "dead_jobs": rows,
        "total": int(total[0]) if total else 0,
        "next_before": rows[-1]["id"] if len(rows) == limit else None,
    }


def dead_detail(call: Call) -> dict[str, Any]:
    with call.services.db.connection() as conn:
        row = dead_job(conn, call.id)
        conn.commit()
    if row is None:
        raise not_found("dead job")
    return {"dead_job": row}


def dead_replay(call: Call) -> dict[str, Any]:
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
    return report.as_dict()


def dead_delete(call: Call) -> dict[str, Any]:
    dead_id = call.id
    with call.services.db.connection() as conn:
        deleted = purge_dead(conn, ids=[dead_id])
        conn.commit()
    if not deleted:
        raise not_found("dead job")
    return {"deleted": dead_id}
