"""Cloud queue failures (the Postgres queue raises the database's own)."""

from __future__ import annotations

from shared.errors import TransientError

__all__ = ["PublishFailed", "QueueUnavailable"]


class QueueUnavailable(TransientError):
    """The queue service did not answer or answered with a server error; retry."""


class PublishFailed(TransientError):
    """Some messages of a batch were not accepted; the caller retries the whole batch
    (consumers are idempotent, so the ones that did go through are harmless duplicates)."""
