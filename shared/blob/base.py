"""The Blob port: stat, bounded streaming reads, writes, listing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

__all__ = ["Blob", "BlobInfo", "SignedUpload"]


@dataclass(frozen=True)
class BlobInfo:
    bucket: str
    key: str
    size: int
    generation: str | None = None
    etag: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class SignedUpload:
    """A short-lived PUT that writes one object without credentials: the client sends exactly
    ``headers`` (they are part of the signature) and the bytes as the body."""

    url: str
    headers: dict[str, str]


class Blob(Protocol):
    def stat(self, bucket: str, key: str) -> BlobInfo:
        """Metadata of one object; raises ObjectNotFound."""
        ...

    def open(self, bucket: str, key: str, *, max_bytes: int) -> BinaryIO:
        """A streaming reader. Raises ObjectTooLarge *before* reading when the object exceeds max_bytes,
        and the reader itself refuses to yield more than max_bytes (the object may grow meanwhile)."""
        ...

    def put(self, bucket: str, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo: ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]: ...

    def read_url(self, bucket: str, key: str, *, expires_s: int) -> str | None:
        """A URL that reads the object without credentials for ``expires_s`` seconds (a signed URL),
        so large bytes need not pass through a function; None where the store cannot sign one
        (a local folder, credentials without a signer), and the caller serves the bytes itself."""
        ...

    def write_url(self, bucket: str, key: str, *, expires_s: int, content_type: str, size: int) -> SignedUpload | None:
        """A signed PUT of ``key`` for ``expires_s`` seconds, bound to ``content_type`` and to at most
        ``size`` bytes where the store can hold a PUT to a size; None where the store cannot sign one
        (a local folder, credentials without a signer)."""
        ...

    def signed_origin(self, bucket: str) -> str | None:
        """The origin (scheme://host[:port]) the signed URLs of ``bucket`` point at, for a page's
        Content-Security-Policy; None where the store signs nothing."""
        ...
