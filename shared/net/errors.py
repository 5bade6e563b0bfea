"""Outbound HTTP failures: poison (never fetch this) versus transient (the far end may recover)."""

from __future__ import annotations

from shared.errors import ContentfnError, PoisonError, TransientError

__all__ = ["OutboundError", "ResponseTooLarge", "UpstreamRejected", "UpstreamUnavailable", "UrlRefused"]


class OutboundError(ContentfnError):
    """Base of every outbound HTTP failure."""


class UrlRefused(OutboundError, PoisonError):
    """The URL (or a redirect) points somewhere the policy forbids: bad scheme, internal address."""


class ResponseTooLarge(OutboundError, PoisonError):
    """The response body passed the size cap (an endless or oversized body); the read was cut."""


class UpstreamRejected(OutboundError, PoisonError):
    """A 4xx answer other than 429: the request itself is wrong and a retry cannot help."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class UpstreamUnavailable(OutboundError, TransientError):
    """429, 5xx, a timeout or a network error that outlasted the retries."""

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s
