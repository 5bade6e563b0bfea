"""Envelope failures. Each is poison: the same bytes can never parse, so the edge dead-letters them."""

from __future__ import annotations

from shared.errors import PoisonError

__all__ = ["EnvelopeError", "MalformedEnvelope", "RequestTooLarge", "UnsupportedEvent"]


class EnvelopeError(PoisonError):
    """A platform envelope that cannot be turned into a domain event."""


class MalformedEnvelope(EnvelopeError):
    """The payload is not the format the trigger promises (missing field, bad JSON, bad base64)."""


class UnsupportedEvent(EnvelopeError):
    """A well-formed event of a type this function does not handle (e.g. an object deletion)."""


class RequestTooLarge(EnvelopeError):
    """An HTTP request body over the limit; refused before it is parsed."""
