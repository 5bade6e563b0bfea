"""Exactly-once effects over at-least-once delivery, recorded in the shared Postgres.

Same contract on every cloud: the first delivery inserts an ``in_progress`` record that expires
with the function's timeout; a concurrent duplicate sees it and is told to retry later (never a
second effect); success stores the result, which later duplicates get back; failure deletes the
record so the platform's retry runs again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from shared.errors import IdempotencyInProgress
from shared.store.db import Database

__all__ = ["IdempotentOutcome", "run_once"]

T = TypeVar("T")


class IdempotentOutcome(dict[str, Any]):
    """The stored result, with ``replayed`` telling whether this call ran the effect."""

    @property
    def replayed(self) -> bool:
        return bool(self.get("_replayed"))


def run_once(db: Database, key: str, ttl_s: float, effect: Callable[[], dict[str, Any]]) -> IdempotentOutcome:
    """Run ``effect`` at most once per ``key`` (until a failure clears the key)."""
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
            return IdempotentOutcome({**(row[1] or {}), "_replayed": True})
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
            (json.dumps(result, default=str), key),
        )
        conn.commit()
    return IdempotentOutcome(result)
