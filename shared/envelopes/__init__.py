"""One event model: every platform envelope → the domain events of :mod:`shared.events`.

``gcp`` and ``aws`` hold the parsers; ``any_cloud.domain_events`` recognises a payload's trigger
(for ``make invoke`` and the golden tests). Nothing here imports a cloud SDK.
"""

from shared.envelopes.errors import EnvelopeError, MalformedEnvelope, RequestTooLarge, UnsupportedEvent

__all__ = ["EnvelopeError", "MalformedEnvelope", "RequestTooLarge", "UnsupportedEvent"]
