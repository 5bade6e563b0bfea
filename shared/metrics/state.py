"""Figures read from Postgres when scraped: the outbox's depth and age by kind, the dead letters by
kind and today's LLM budget. Kept off the hot paths: two small queries per scrape, none per job."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from shared.queue.kinds import JOB_KINDS
from shared.store.db import Database

__all__ = ["StoreState", "watch_store"]

log = logging.getLogger(__name__)

_QUEUE_SQL = """
SELECT kind, count(*),
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE visible_at <= now())), 0)
FROM jobs GROUP BY kind
"""
_DEAD_SQL = "SELECT kind, count(*) FROM dead_jobs GROUP BY kind"
_BUDGET_SQL = "SELECT token_limit, reserved, used FROM llm_budget WHERE day = (now() AT TIME ZONE 'UTC')::date"


@dataclass(eq=False)  # the registry keeps collectors in a dict: hashed by identity
class StoreState:
    """A collector over one database; every job kind appears (0 when none wait) so a panel over an
    idle queue shows zero rather than no data."""

    db: Database
    daily_token_limit: int

    def collect(self) -> Iterator[Metric]:
        try:
            queue, dead, budget = self._read()
        except Exception as exc:  # a scrape during a database outage shows the outage, not a 500
            log.warning("store metrics unavailable: %s: %s", type(exc).__name__, exc)
            return
        depth = GaugeMetricFamily("contentfn_queue_depth", "Jobs in the Postgres outbox, by kind.", labels=["kind"])
        age = GaugeMetricFamily(
            "contentfn_queue_oldest_age_seconds",
            "Age of the oldest job ready to be claimed in the Postgres outbox, by kind.",
            labels=["kind"],
        )
        for kind in sorted(set(JOB_KINDS) | set(queue)):
            count, oldest = queue.get(kind, (0, 0.0))
            depth.add_metric([kind], count)
            age.add_metric([kind], oldest)
        yield depth
        yield age
        letters = GaugeMetricFamily(
            "contentfn_dead_letters", "Dead letters held in the store of record, by kind.", labels=["kind"]
        )
        for kind in sorted(set(JOB_KINDS) | set(dead)):
            letters.add_metric([kind], dead.get(kind, 0))
        yield letters
        limit, reserved, used = budget if budget is not None else (self.daily_token_limit, 0, 0)
        yield GaugeMetricFamily("contentfn_llm_budget_tokens", "Today's LLM token limit.", value=limit)
        yield GaugeMetricFamily(
            "contentfn_llm_budget_used_ratio",
            "Share of today's LLM token budget used or reserved (alarm at 0.8).",
            value=(used + reserved) / limit if limit > 0 else 0.0,
        )

    def _read(self) -> tuple[dict[str, tuple[int, float]], dict[str, int], tuple[int, int, int] | None]:
        with self.db.connection() as conn:
            queue = {str(k): (int(n), float(a)) for k, n, a in conn.execute(_QUEUE_SQL).fetchall()}
            dead = {str(k): int(n) for k, n in conn.execute(_DEAD_SQL).fetchall()}
            row: Any = conn.execute(_BUDGET_SQL).fetchone()
            conn.commit()
        return queue, dead, (int(row[0]), int(row[1]), int(row[2])) if row else None


def watch_store(registry: CollectorRegistry, db: Database, daily_token_limit: int) -> StoreState:
    """Register the store's figures in ``registry`` (a scraped one: the local API's, the GPU service's)."""
    state = StoreState(db, daily_token_limit)
    registry.register(state)
    return state
