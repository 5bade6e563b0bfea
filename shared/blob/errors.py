"""Blob failures beyond the port's own (ObjectNotFound, ObjectTooLarge in :mod:`shared.errors`)."""

from __future__ import annotations

from shared.errors import TransientError

__all__ = ["BlobAccessDenied", "BlobUnavailable", "ObjectChanged"]


class BlobUnavailable(TransientError):
    """The object store did not answer or answered with a server error; retry."""


class BlobAccessDenied(TransientError):
    """The function's identity may not read the object. Transient on purpose: fixing the IAM
    binding makes the retry succeed, and the platform's dead-letter keeps the event meanwhile."""


class ObjectChanged(TransientError):
    """The object was replaced between stat and read; the retry reads the new version's size."""
