"""One exception per failure mode, mapped once at the edge.

``PoisonError`` subclasses can never succeed on retry: the edge dead-letters them at once.
``TransientError`` subclasses may succeed later: the edge retries with capped backoff.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ContentfnError",
    "FileRejected",
    "IdempotencyClaimLost",
    "IdempotencyInProgress",
    "ModelNotReady",
    "ObjectNotFound",
    "ObjectTooLarge",
    "PoisonError",
    "TransientError",
    "UnsupportedObject",
]


class ContentfnError(Exception):
    """Base of every error this project raises on purpose."""


class PoisonError(ContentfnError):
    """Input that cannot ever succeed; dead-letter it with this message."""


class TransientError(ContentfnError):
    """A failure that may go away on retry (database restart, network blip)."""


class FileRejected(PoisonError):
    """A whole uploaded file is refused (not UTF-8, unparseable container)."""


class ObjectTooLarge(FileRejected):
    """The object is larger than the configured cap; refused before any byte is parsed."""


class UnsupportedObject(FileRejected):
    """The object's extension or type is not one this function handles."""


class ObjectNotFound(PoisonError):
    """The object named by the event does not exist (deleted before processing)."""


class IdempotencyInProgress(TransientError):
    """Another delivery of the same event is being processed right now; retry later."""


class IdempotencyClaimLost(TransientError):
    """This delivery's claim expired and another delivery took it over: its effect must not commit."""


class ConfigError(ContentfnError):
    """Configuration is invalid; the message names the variable."""


class ModelNotReady(ContentfnError):
    """The model files are missing; run ``make model``."""
