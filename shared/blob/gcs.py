"""Google Cloud Storage blob adapter (google-cloud-storage). Streaming reads pinned to the
generation that was size-checked; ranged downloads, never the whole object in memory.

The SDK is imported when the first adapter is built, never at module import.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

from shared.blob.base import BlobInfo, SignedUpload
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
        """A V4 signed GET, or None where the credentials sign nothing (the caller serves the bytes)."""
        signing = self._signing()
        if signing is None:
            return None
        blob = self._client.bucket(bucket).blob(key)
        try:
            url = blob.generate_signed_url(**_v4(expires_s, "GET"), **signing)
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        return str(url)

    def write_url(self, bucket: str, key: str, *, expires_s: int, content_type: str, size: int) -> SignedUpload | None:
        """A V4 signed PUT bound to ``content_type``, with ``x-goog-content-length-range`` signed in:
        GCS refuses a body longer than ``size``."""
        signing = self._signing()
        if signing is None:
            return None
        headers = {"Content-Type": content_type, "x-goog-content-length-range": f"0,{size}"}
        blob = self._client.bucket(bucket).blob(key)
        try:
            url = blob.generate_signed_url(
                **_v4(expires_s, "PUT"),
                content_type=content_type,
                headers={"x-goog-content-length-range": headers["x-goog-content-length-range"]},
                **signing,
            )
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        return SignedUpload(str(url), headers)

    def signed_origin(self, bucket: str) -> str | None:
        if self._signing() is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(str(self._client.api_endpoint))
        return f"{parts.scheme}://{parts.netloc}"

    def _signing(self) -> dict[str, Any] | None:
        """How this client's credentials sign a URL: with their own key (a service account key file),
        through the IAM signBlob API as the account they stand for (Cloud Run's metadata-server
        credentials hold an email and a token, no key), or not at all (an anonymous client)."""
        from google.auth.credentials import Signing

        credentials = self._client._credentials
        if isinstance(credentials, Signing):
            return {}
        email = getattr(credentials, "service_account_email", None)
        if not email:
            return None
        if not getattr(credentials, "valid", False):  # "default" stands for the email until a refresh
            from google.auth.transport.requests import Request

            try:
                credentials.refresh(Request())
            except Exception as exc:
                raise BlobUnavailable(f"GCS credentials could not be refreshed: {type(exc).__name__}") from exc
            email = credentials.service_account_email
        return {"service_account_email": email, "access_token": credentials.token}

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


def _v4(expires_s: int, method: str) -> dict[str, Any]:
    from datetime import timedelta

    return {"version": "v4", "expiration": timedelta(seconds=expires_s), "method": method}


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
