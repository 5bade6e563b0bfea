"""``/uploads``: a track file into the upload bucket from a browser or any client, checked before a
byte is written.

``POST /uploads`` takes the file's name and size, refuses what ingest would refuse anyway (an unknown
extension, a file over ``max_upload_bytes``) and anything that is not a plain file name (a path, a
hidden file, control characters), and picks the object's key: ``<upload_prefix><random>/<name>``, so
two uploads of one name never overwrite each other and the API writes nowhere but its prefix.

Its answer says how to send the bytes (``upload``):

* in the cloud, a short-lived signed PUT straight to the bucket (S3 presigned, GCS V4), so a large file
  never passes through a function; its signature covers the content type and the size;
* where the store signs nothing (the local folder the local runtime watches), ``PUT /uploads?key=``
  on the API itself, which writes the body into the bucket.

Either way the bucket's object event starts ingest, and ``GET /objects?key=`` (the answer's
``trace``, also its ``Location``) follows the file through every stage.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from functions.api.errors import ApiError
from functions.api.params import json_body
from functions.api.routing import Call, Created
from functions.ingest.parsing import ACCEPTED_EXTENSIONS
from shared.config import Settings
from shared.errors import ObjectNotFound

__all__ = [
    "DIRECT_UPLOAD",
    "UploadAnswer",
    "UploadRequest",
    "UploadStored",
    "create_upload",
    "put_upload",
    "upload_key_name",
]

# The operation id of the route that takes a file's bytes itself: its server lets its body reach
# max_upload_bytes instead of the usual small cap of a JSON body.
DIRECT_UPLOAD = "put_upload"

_MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv", "json": "application/json"}
_TOKEN = re.compile(r"^[0-9a-f]{16}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UploadRequest(_Strict):
    name: str = Field(min_length=1, max_length=1000, description="the file's name (no folders)")
    size: int = Field(ge=1, description="its size in bytes")


class UploadTarget(_Strict):
    method: Literal["PUT"]
    url: str = Field(description="absolute (a signed bucket URL) or relative to the API")
    headers: dict[str, str] = Field(description="send exactly these with the bytes (signed URLs sign them)")
    via: Literal["signed_url", "api"] = Field(
        description="signed_url: to the bucket, with nothing else (no API key); api: to the API, with the key"
    )
    expires_at: datetime | None = Field(description="when a signed URL stops working; null for the API")


class UploadAnswer(_Strict):
    bucket: str
    key: str
    size: int
    max_bytes: int
    trace: str = Field(description="the file's trace (GET /objects?key=), relative to the API")
    upload: UploadTarget


class UploadStored(_Strict):
    bucket: str
    key: str
    size: int
    trace: str


def _media_type(name: str) -> str:
    return _MEDIA[ACCEPTED_EXTENSIONS[_extension(name)]]


def _extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def check_name(name: str, settings: Settings) -> str:
    """The file name as the key will hold it, or ApiError 400 saying which rule it broke (never
    echoing it)."""
    if len(name) > settings.upload_name_max_chars:
        raise ApiError(400, "invalid_name", f"the file name is longer than {settings.upload_name_max_chars} characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ApiError(400, "invalid_name", "give the file's name alone, without folders")
    if name != name.strip() or not name:
        raise ApiError(400, "invalid_name", "the file name must not start or end with spaces")
    if name.startswith("."):
        raise ApiError(400, "invalid_name", "the file name must not start with a dot")
    if any(ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 for c in name):
        raise ApiError(400, "invalid_name", "the file name must not hold control characters")
    if _extension(name) not in ACCEPTED_EXTENSIONS:
        accepted = ", ".join(ACCEPTED_EXTENSIONS)
        raise ApiError(400, "unsupported_extension", f"not a track file; accepted extensions are {accepted}")
    return name


def check_size(size: int, settings: Settings) -> None:
    if size > settings.max_upload_bytes:
        raise ApiError(413, "too_large", f"the file is over the {settings.max_upload_bytes}-byte upload limit")


def upload_key_name(key: str, settings: Settings) -> str:
    """The file name of a key ``POST /uploads`` made (``<prefix><16 hex>/<name>``), or ApiError 400."""
    rest = key.removeprefix(settings.upload_prefix)
    token, slash, name = rest.partition("/")
    if rest == key or not slash or not _TOKEN.match(token):
        raise ApiError(400, "invalid_key", "not a key POST /uploads gave")
    return check_name(name, settings)


def _trace(key: str) -> str:
    return f"objects?key={quote(key, safe='')}"


def create_upload(call: Call) -> Created:
    s = call.services.settings
    body = json_body(call.request, UploadRequest, what="upload (name, size)")
    name = check_name(body.name, s)
    check_size(body.size, s)
    key = f"{s.upload_prefix}{secrets.token_hex(8)}/{name}"
    media = _media_type(name)
    signed = call.services.blob.write_url(
        s.bucket, key, expires_s=s.upload_url_ttl_s, content_type=media, size=body.size
    )
    if signed is not None:
        target = UploadTarget(
            method="PUT",
            url=signed.url,
            headers=signed.headers,
            via="signed_url",
            expires_at=datetime.now(UTC) + timedelta(seconds=s.upload_url_ttl_s),
        )
    else:
        target = UploadTarget(
            method="PUT",
            url=f"uploads?key={quote(key, safe='')}",
            headers={"Content-Type": media},
            via="api",
            expires_at=None,
        )
    answer = UploadAnswer(
        bucket=s.bucket, key=key, size=body.size, max_bytes=s.max_upload_bytes, trace=_trace(key), upload=target
    )
    return Created(answer, f"/{answer.trace}")


def put_upload(call: Call) -> Created:
    """The bytes of a file ``POST /uploads`` announced, written by the API itself: only where the store
    signs no upload URL (the local runtime's folder); a cloud store takes them at its signed URL."""
    svc, s = call.services, call.services.settings
    key: str = call.query["key"]
    name = upload_key_name(key, s)
    if svc.blob.signed_origin(s.bucket) is not None:
        raise ApiError(409, "signed_upload_only", "this store takes uploads at the signed URL POST /uploads answers")
    data = call.request.body
    check_size(len(data), s)
    if not data:
        raise ApiError(400, "empty", "the file is empty")
    try:
        svc.blob.stat(s.bucket, key)
    except ObjectNotFound:
        pass
    else:
        raise ApiError(409, "exists", "that upload was made already; ask POST /uploads for a new one")
    info = svc.blob.put(s.bucket, key, bytes(data), content_type=_media_type(name))
    stored = UploadStored(bucket=info.bucket, key=info.key, size=info.size, trace=_trace(key))
    return Created(stored, f"/{stored.trace}")
