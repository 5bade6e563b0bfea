"""The Blob port: stat, bounded streaming reads, writes, listing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

__all__ = ["Blob", "BlobInfo"]


@dataclass(frozen=True)
class BlobInfo:
    bucket: str
    key: str
    size: int
    generation: str | None = None
    etag: str | None = None
    content_type: str | None = None


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
