"""Exactly-once effects over at-least-once delivery, recorded in the shared Postgres.

Same contract on every cloud: the first delivery inserts an ``in_progress`` record, owned by a
token of its own, that expires once the function's timeout has passed (the platform has killed the
delivery by then); a concurrent duplicate sees it and is told to retry later (never a second
effect); success stores the result, which later duplicates get back; failure deletes the record so
the platform's retry runs again.

Only the owner completes or clears its claim. An effect that writes to the database completes the
claim inside its own transaction (:meth:`Claim.complete`), so "done" commits exactly when the effect
does: a crash after that commit leaves a finished record to replay, not an in-progress one that
would refuse every retry until it expired, and a delivery whose claim was taken over cannot commit
its effect at all (the completion finds no claim of its own and rolls the transaction back).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from shared.errors import IdempotencyClaimLost, IdempotencyInProgress
from shared.store.db import Database

__all__ = ["Claim", "IdempotentOutcome", "in_progress_ttl_s", "run_claimed", "run_once"]

T = TypeVar("T")

# A claim outlives the function's timeout by this much: the platform has stopped the delivery by
# then. Owner tokens keep a takeover safe even if clocks disagree, so the margin stays small.
_TAKEOVER_MARGIN_S = 2.0


def in_progress_ttl_s(function_timeout_s: float | None, default_s: float) -> float:
    """How long an in-progress claim holds off duplicates: just past the function's timeout when the
    platform told it (Terraform sets ``CONTENTFN_FUNCTION_TIMEOUT_S``), else ``default_s``.

    Derived, not configured apart, because a longer claim than the timeout refuses the platform's
    retries of a crashed delivery until they run out (Lambda retries an async invoke within minutes).
    """
    if function_timeout_s is None:
        return default_s
    return function_timeout_s + _TAKEOVER_MARGIN_S


@dataclass
class Claim:
    """One delivery's hold on an idempotency key. ``owner`` is this delivery's token."""

    key: str
    owner: str
    result_type: Any = dict[str, Any]
    completed: bool = field(default=False, init=False)

    def complete(self, conn: Any, result: Any) -> None:
        """Mark the key done with ``result`` inside the caller's transaction (before its commit).

        Raises IdempotencyClaimLost when the claim is no longer this delivery's: the caller's
        transaction must then roll back (raising does that), since another delivery runs the effect.
        """
        body = TypeAdapter(self.result_type).dump_json(result, fallback=str).decode()
        updated = conn.execute(
            "UPDATE idempotency SET status = 'done', result = %s::jsonb, expires_at = 'infinity'"
            " WHERE key = %s AND owner = %s AND status = 'in_progress'",
            (body, self.key, self.owner),
        )
        if updated.rowcount != 1:
            raise IdempotencyClaimLost(f"the claim on {self.key} expired and was taken over")
        self.completed = True


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
    same typed result as the delivery that ran. The claim is completed after the effect, in a
    transaction of its own; an effect with a transaction of its own uses :func:`run_claimed`.
    """
    return run_claimed(db, key, ttl_s, lambda _claim: effect(), result_type=result_type)


def run_claimed(
    db: Database, key: str, ttl_s: float, effect: Callable[[Claim], T], *, result_type: Any = dict[str, Any]
) -> IdempotentOutcome[T]:
    """Like :func:`run_once`, but ``effect`` gets the :class:`Claim` and completes it in the
    transaction that writes its effect; a path of the effect that does not is completed afterwards."""
    adapter: TypeAdapter[T] = TypeAdapter(result_type)
    claim = Claim(key, uuid.uuid4().hex, result_type)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO idempotency (key, status, owner, expires_at)
            VALUES (%s, 'in_progress', %s, now() + make_interval(secs => %s))
            ON CONFLICT (key) DO UPDATE
            SET status = 'in_progress', owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
                result = NULL, created_at = now()
            WHERE idempotency.status = 'in_progress' AND idempotency.expires_at < now()
            RETURNING key
            """,
            (key, claim.owner, ttl_s),
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
        result = effect(claim)
    except BaseException:
        with db.connection() as conn, conn.cursor() as cur:
            # Only this delivery's own claim: one taken over belongs to the delivery running now.
            cur.execute(
                "DELETE FROM idempotency WHERE key = %s AND owner = %s AND status = 'in_progress'",
                (key, claim.owner),
            )
            conn.commit()
        raise
    if not claim.completed:
        with db.connection() as conn:
            claim.complete(conn, result)
            conn.commit()
    return IdempotentOutcome(result)
