"""Amazon S3 blob adapter (boto3). Streaming reads pinned to the version that was size-checked.

boto3 is imported when the first adapter is built, never at module import, so an entry point
that does not touch S3 on a path does not pay for it at cold start.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from shared.blob.base import BlobInfo, SignedUpload
from shared.blob.errors import BlobAccessDenied, BlobUnavailable, ObjectChanged
from shared.blob.local import BoundedReader
from shared.errors import ObjectNotFound, ObjectTooLarge

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover

__all__ = ["S3Blob"]

_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchVersion"}
_DENIED = {"403", "AccessDenied", "Forbidden"}
_CHANGED = {"412", "PreconditionFailed"}
_READ_BUFFER = 1 << 20


class S3Blob:
    """The Blob port over one S3 client (any bucket the client may reach)."""

    def __init__(self, client: S3Client | Any) -> None:
        self._client = client

    @classmethod
    def create(
        cls, *, endpoint_url: str | None = None, region: str | None = None, connect_timeout_s: float = 5.0
    ) -> S3Blob:
        """A client with bounded timeouts and standard retries; ``endpoint_url`` for moto or MinIO."""
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=connect_timeout_s,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoint_url else None,
            # presigned URLs as SigV4 (botocore still presigns SigV2 query strings by default)
            signature_version="s3v4",
        )
        return cls(boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config))

    def read_url(self, bucket: str, key: str, *, expires_s: int) -> str | None:
        """A presigned GET (SigV4), made locally from the client's credentials: no call to S3."""
        try:
            url = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
            )
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        return str(url)

    def write_url(self, bucket: str, key: str, *, expires_s: int, content_type: str, size: int) -> SignedUpload | None:
        """A presigned PUT (SigV4) whose signature covers Content-Type and Content-Length: S3 refuses
        a body of any other length or type. Made locally: no call to S3."""
        params = {"Bucket": bucket, "Key": key, "ContentType": content_type, "ContentLength": size}
        try:
            url = self._client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s)
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        # Content-Length is set by the client from the body itself; only the type is to be sent.
        return SignedUpload(str(url), {"Content-Type": content_type})

    def signed_origin(self, bucket: str) -> str | None:
        # The client decides path or virtual-host addressing: read the origin off a URL it signs.
        parts = urlsplit(self.read_url(bucket, "origin", expires_s=60) or "")
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else None

    def stat(self, bucket: str, key: str) -> BlobInfo:
        try:
            head = self._client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        return BlobInfo(
            bucket=bucket,
            key=key,
            size=int(head["ContentLength"]),
            generation=head.get("VersionId") if head.get("VersionId") not in (None, "null") else None,
            etag=str(head.get("ETag", "")).strip('"') or None,
            content_type=head.get("ContentType"),
        )

    def open(self, bucket: str, key: str, *, max_bytes: int) -> BinaryIO:
        info = self.stat(bucket, key)
        if info.size > max_bytes:
            raise ObjectTooLarge(f"object {bucket}/{key} is {info.size} bytes; the cap is {max_bytes}")
        # Read exactly the version whose size was checked: a concurrent overwrite fails the
        # precondition (retried) instead of streaming an unchecked, possibly larger object.
        pin: dict[str, str] = {"VersionId": info.generation} if info.generation else {}
        if not pin and info.etag:
            pin = {"IfMatch": f'"{info.etag}"'}
        try:
            body = self._client.get_object(Bucket=bucket, Key=key, **pin)["Body"]
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        reader = BoundedReader(_Stream(body), max_bytes, f"{bucket}/{key}")  # type: ignore[arg-type]
        return io.BufferedReader(reader, buffer_size=_READ_BUFFER)  # type: ignore[return-value]

    def put(self, bucket: str, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            out = self._client.put_object(Bucket=bucket, Key=key, Body=data, **extra)
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc
        version = out.get("VersionId")
        return BlobInfo(
            bucket=bucket,
            key=key,
            size=len(data),
            generation=version if version not in (None, "null") else None,
            etag=str(out.get("ETag", "")).strip('"') or None,
            content_type=content_type,
        )

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield BlobInfo(bucket, item["Key"], int(item["Size"]), etag=str(item.get("ETag", "")).strip('"'))
        except Exception as exc:
            raise _translate(exc, bucket, prefix) from exc


class _Stream:
    """botocore's StreamingBody as the raw file BoundedReader expects (read + close)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, n: int = -1) -> bytes:
        try:
            return bytes(self._body.read(n))
        except Exception as exc:  # connection reset mid-stream
            raise BlobUnavailable(f"object stream broke: {type(exc).__name__}") from exc

    def close(self) -> None:
        self._body.close()


def _translate(exc: Exception, bucket: str, key: str) -> Exception:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        if type(exc).__module__.startswith(("botocore", "urllib3")):
            return BlobUnavailable(f"S3 unreachable: {type(exc).__name__}")
        return exc
    code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    if code in _NOT_FOUND or status == "404":
        return ObjectNotFound(f"object {bucket}/{key} does not exist")
    if code in _DENIED or status == "403":
        return BlobAccessDenied(f"access to {bucket}/{key} denied")
    if code in _CHANGED or status == "412":
        return ObjectChanged(f"object {bucket}/{key} changed while being read")
    return BlobUnavailable(f"S3 error {code or status}")
