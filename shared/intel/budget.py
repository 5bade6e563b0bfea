"""The daily LLM token budget, kept in Postgres so every worker shares one count.

A call reserves its worst case *before* it is sent — prompt bytes (a byte-level BPE token is at
least one byte) plus per-message overhead plus ``max_tokens`` — and the reservation is refused when
``used + reserved`` would pass the day's limit. Afterwards the reservation is settled to the tokens
the provider reported. So the limit holds even with many calls in flight at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from shared.store.db import Database

__all__ = ["Reservation", "TokenBudget", "worst_case_tokens"]

log = logging.getLogger(__name__)
_PER_MESSAGE = 8


def worst_case_tokens(messages: list[dict[str, str]], max_output_tokens: int) -> int:
    return sum(len(m["content"].encode("utf-8")) + _PER_MESSAGE for m in messages) + max_output_tokens + 16


@dataclass(frozen=True)
class Reservation:
    day: date
    tokens: int


class TokenBudget:
    def __init__(self, db: Database, daily_limit: int) -> None:
        self.db = db
        self.daily_limit = daily_limit

    def reserve(self, tokens: int) -> Reservation | None:
        """Hold ``tokens`` of today's budget, or None if that would pass the limit."""
        day = datetime.now(UTC).date()
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO llm_budget (day, token_limit) VALUES (%s, %s) ON CONFLICT (day) DO NOTHING",
                (day, self.daily_limit),
            )
            cur.execute(
                """
                UPDATE llm_budget SET reserved = reserved + %(n)s, calls = calls + 1
                WHERE day = %(day)s AND used + reserved + %(n)s <= least(token_limit, %(limit)s)
                RETURNING day
                """,
                {"n": tokens, "day": day, "limit": self.daily_limit},
            )
            granted = cur.fetchone() is not None
            if not granted:
                cur.execute("UPDATE llm_budget SET refused = refused + 1 WHERE day = %s", (day,))
            conn.commit()
        return Reservation(day, tokens) if granted else None

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Turn a reservation into real usage (0 for a call that never reached the model)."""
        if used_tokens > reservation.tokens:
            log.warning("LLM call used %d tokens, more than the %d reserved", used_tokens, reservation.tokens)
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE llm_budget SET reserved = reserved - %(n)s, used = used + least(%(u)s, %(n)s) WHERE day = %(day)s",
                {"n": reservation.tokens, "u": max(0, used_tokens), "day": reservation.day},
            )
            conn.commit()

    def today(self) -> dict[str, int]:
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT token_limit, reserved, used, calls, refused FROM llm_budget WHERE day = %s",
                (datetime.now(UTC).date(),),
            )
            row = cur.fetchone()
            conn.commit()
        keys = ("limit", "reserved", "used", "calls", "refused")
        return dict(zip(keys, (int(v) for v in row), strict=True)) if row else dict.fromkeys(keys, 0)
