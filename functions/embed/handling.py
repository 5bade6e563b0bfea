"""How the cloud entry points (shared.platform) run embed: a pushed batch is embedded in one model
call, the outbox drained with the core's own batches, and each followed by the HNSW index check
and, within its share of the turns, one step of a shadow model's backfill.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from functions.embed.backfill import BackfillThrottle, backfill_step, uploads_waiting
from functions.embed.core import EMBED_JOB, embed_claimed, run_embed_batch
from functions.embed.index import IndexKeeper
from shared.platform.jobs import Backlog, JobHandling
from shared.services import Services

__all__ = ["EMBED_HANDLING", "after_embed_batch", "index_after_batch"]

log = logging.getLogger(__name__)

_keepers: list[tuple[Services, IndexKeeper]] = []  # one per process: it remembers a ready index
_keeper_lock = threading.Lock()
_throttles: dict[float, BackfillThrottle] = {}  # per process, like the keeper: it counts batches


def _keeper(services: Services) -> IndexKeeper:
    with _keeper_lock:
        if not (_keepers and _keepers[0][0] is services):
            _keepers[:] = [(services, IndexKeeper(services))]
        return _keepers[0][1]


def index_after_batch(services: Services, source_backlog: Backlog | None) -> Mapping[str, Any]:
    """Build the HNSW index once the model has vectors and no bulk backlog waits.

    ``source_backlog`` tells how many embed jobs still wait in the cloud queue that delivered the
    batch (None for the outbox drain, whose backlog the keeper counts itself), so a bulk load
    builds its index after the backlog, not under it (see functions.embed.index). The keeper keeps
    the last one it was told: a drain between two pushed batches still sees the cloud backlog.
    """
    keeper = _keeper(services)
    if source_backlog is not None:
        keeper.backlog_elsewhere = source_backlog
    try:
        return {"index": keeper.tick().value}
    except Exception as exc:  # search keeps its exact scan; the next invocation tries again
        log.warning("HNSW index check failed: %s: %s", type(exc).__name__, exc)
        return {"index": "error"}


def after_embed_batch(services: Services, source_backlog: Backlog | None) -> Mapping[str, Any]:
    """The index check, then one backfill step when the throttle gives backfill this turn: uploads
    waiting in the outbox or in the cloud queue that delivered the batch come first."""
    out = dict(index_after_batch(services, source_backlog))
    share = services.settings.embed_backfill_share
    with _keeper_lock:
        throttle = _throttles.setdefault(share, BackfillThrottle(share))
    try:
        waiting = uploads_waiting(services) or (source_backlog is not None and source_backlog() > 0)
        if throttle.allow(waiting):
            step = backfill_step(services)
            if step is not None:
                out["backfill"] = {"model": step.model, "embedded": step.embedded, "done": step.done}
    except Exception as exc:  # the batch is settled; the next invocation steps again
        log.warning("backfill step failed: %s: %s", type(exc).__name__, exc)
        out["backfill"] = "error"
    return out


EMBED_HANDLING = JobHandling(
    EMBED_JOB, embed_claimed, run_embed_batch, after_batch=after_embed_batch, done_key="embedded"
)
