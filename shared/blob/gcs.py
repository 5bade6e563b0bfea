"""Google Cloud Storage blob adapter (google-cloud-storage). Streaming reads pinned to the
generation that was size-checked; ranged downloads, never the whole object in memory.

The SDK is imported when the first adapter is built, never at module import.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

from shared.blob.base import BlobInfo
from shared.blob.errors import BlobAccessDenied, BlobUnavailable, ObjectChanged
from shared.blob.local import BoundedReader
from shared.errors import ObjectNotFound, ObjectTooLarge

__all__ = ["GcsBlob"]

_CHUNK = 1 << 20


class GcsBlob:
    """The Blob port over one ``google.cloud.storage.Client``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def create(cls, *, project: str | None = None, endpoint: str | None = None) -> GcsBlob:
        """The platform's credentials; or, with ``endpoint`` (or ``STORAGE_EMULATOR_HOST``), an emulator
        reached anonymously."""
        from google.cloud import storage

        emulator = endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(
                project=project or "emulator",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": emulator},
            )
        else:
            client = storage.Client(project=project)
        return cls(client)

    def read_url(self, bucket: str, key: str, *, expires_s: int) -> str | None:
        """A V4 signed GET made with the client's credentials when they hold a signer (a service
        account key); platform credentials without one (Cloud Run's metadata server, an emulator's
        anonymous client) sign nothing here, and the caller serves the bytes."""
        from datetime import timedelta

        from google.auth.credentials import Signing

        if not isinstance(self._client._credentials, Signing):
            return None
        blob = self._client.bucket(bucket).blob(key)
        try:
            url = blob.generate_signed_url(version="v4", expiration=timedelta(seconds=expires_s), method="GET")
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        return str(url)

    def stat(self, bucket: str, key: str) -> BlobInfo:
        try:
            blob = self._client.bucket(bucket).get_blob(key)
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        if blob is None:
            raise ObjectNotFound(f"object {bucket}/{key} does not exist")
        return _info(bucket, blob)

    def open(self, bucket: str, key: str, *, max_bytes: int) -> BinaryIO:
        info = self.stat(bucket, key)
        if info.size > max_bytes:
            raise ObjectTooLarge(f"object {bucket}/{key} is {info.size} bytes; the cap is {max_bytes}")
        # Pin the generation that was size-checked: an overwrite meanwhile fails (retried)
        # instead of streaming an unchecked object.
        generation = int(info.generation) if info.generation else None
        blob = self._client.bucket(bucket).blob(key, generation=generation)
        try:
            raw = blob.open("rb", chunk_size=_CHUNK)
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        reader = BoundedReader(_Stream(raw, bucket, key), max_bytes, f"{bucket}/{key}")  # type: ignore[arg-type]
        return io.BufferedReader(reader, buffer_size=_CHUNK)  # type: ignore[return-value]

    def put(self, bucket: str, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        blob = self._client.bucket(bucket).blob(key)
        try:
            blob.upload_from_string(data, content_type=content_type or "application/octet-stream")
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        return _info(bucket, blob)

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        try:
            for blob in self._client.list_blobs(bucket, prefix=prefix or None):
                yield _info(bucket, blob)
        except Exception as exc:
            raise _translate(exc, bucket, prefix) from exc


class _Stream:
    def __init__(self, raw: Any, bucket: str, key: str) -> None:
        self._raw = raw
        self._where = (bucket, key)

    def read(self, n: int = -1) -> bytes:
        try:
            return bytes(self._raw.read(n))
        except Exception as exc:
            raise _translate(exc, *self._where) from exc

    def close(self) -> None:
        self._raw.close()


def _info(bucket: str, blob: Any) -> BlobInfo:
    return BlobInfo(
        bucket=bucket,
        key=blob.name,
        size=int(blob.size or 0),
        generation=str(blob.generation) if blob.generation is not None else None,
        etag=blob.etag,
        content_type=blob.content_type,
    )


def _translate(exc: Exception, bucket: str, key: str) -> Exception:
    code = getattr(exc, "code", None)
    if code == 404:
        return ObjectNotFound(f"object {bucket}/{key} does not exist")
    if code in (401, 403):
        return BlobAccessDenied(f"access to {bucket}/{key} denied")
    if code == 412:
        return ObjectChanged(f"object {bucket}/{key} changed while being read")
    if isinstance(exc, ObjectNotFound | ObjectTooLarge):
        return exc
    return BlobUnavailable(f"GCS error: {type(exc).__name__}")
