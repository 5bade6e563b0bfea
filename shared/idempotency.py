"""Exactly-once effects over at-least-once delivery, recorded in the shared Postgres.

Same contract on every cloud: the first delivery inserts an ``in_progress`` record that expires
with the function's timeout; a concurrent duplicate sees it and is told to retry later (never a
second effect); success stores the result, which later duplicates get back; failure deletes the
record so the platform's retry runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from shared.errors import IdempotencyInProgress
from shared.store.db import Database

__all__ = ["IdempotentOutcome", "run_once"]

T = TypeVar("T")


@dataclass(frozen=True)
class IdempotentOutcome(Generic[T]):
    """The effect's result, and whether it was read back from an earlier delivery instead of run now."""

    result: T
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        """The platform's answer: the result's JSON with ``replayed`` beside its fields."""
        body = TypeAdapter(type(self.result)).dump_python(self.result, mode="json", fallback=str)
        return {**(body if isinstance(body, dict) else {"result": body}), "replayed": self.replayed}


def run_once(
    db: Database, key: str, ttl_s: float, effect: Callable[[], T], *, result_type: Any = dict[str, Any]
) -> IdempotentOutcome[T]:
    """Run ``effect`` at most once per ``key`` (until a failure clears the key).

    ``result_type`` is the type the effect returns (a pydantic model, a union of them, a dict): the
    result is stored as its JSON and a replay reads it back as that type, so a redelivery gets the
    same typed result as the delivery that ran.
    """
    adapter: TypeAdapter[T] = TypeAdapter(result_type)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO idempotency (key, status, expires_at)
            VALUES (%s, 'in_progress', now() + make_interval(secs => %s))
            ON CONFLICT (key) DO UPDATE
            SET status = 'in_progress', expires_at = EXCLUDED.expires_at, result = NULL, created_at = now()
            WHERE idempotency.status = 'in_progress' AND idempotency.expires_at < now()
            RETURNING key
            """,
            (key, ttl_s),
        )
        claimed = cur.fetchone() is not None
        if not claimed:
            cur.execute("SELECT status, result FROM idempotency WHERE key = %s", (key,))
            row = cur.fetchone()
        conn.commit()
    if not claimed:
        if row is not None and row[0] == "done":
            return IdempotentOutcome(adapter.validate_python(row[1] or {}), replayed=True)
        raise IdempotencyInProgress(f"another delivery of {key} is in progress")
    try:
        result = effect()
    except BaseException:
        with db.connection() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM idempotency WHERE key = %s AND status = 'in_progress'", (key,))
            conn.commit()
        raise
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE idempotency SET status = 'done', result = %s::jsonb, expires_at = 'infinity' WHERE key = %s",
            (adapter.dump_json(result, fallback=str).decode(), key),
        )
        conn.commit()
    return IdempotentOutcome(result)
