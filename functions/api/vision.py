"""``/images/{id}/detections`` and ``/streams`` for the API core.

Errors name the problem, never the submitted URL: a refused stream says which rule it broke.
Streams count against quotas per owner: the name of the API key that registered them
(:func:`functions.api.auth.owner_of`), each key allowed its own number at once
(:func:`functions.api.auth.max_streams_of`). A registration over a quota is a
429 whose ``Retry-After`` is a fixed short interval (``_RETRY_QUOTA_S``): a place frees when another
stream stops, ends, fails or expires, which the API cannot foresee.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.api.auth import max_streams_of, owner_of
from functions.api.errors import ApiError, bad_param, not_found
from functions.api.paging import IdKey, decode_cursor, encode_cursor
from functions.api.params import json_body
from functions.api.routing import Asset, Call, Created
from shared.errors import ObjectNotFound, PoisonError
from shared.events import HttpResponse
from shared.net.policy import AddressPolicy
from shared.services import Services
from shared.vision.store import detections_for_image, get_image, list_images
from shared.vision.stream_registry import (
    StreamQuotaExceeded,
    get_stream,
    list_streams,
    register_stream,
    stop_stream,
    stream_detections,
    validate_stream_url,
)

__all__ = [
    "Detection",
    "Frame",
    "FramePage",
    "Image",
    "ImageDetections",
    "ImageLink",
    "ImagePage",
    "ImageSummary",
    "Stream",
    "StreamAnswer",
    "StreamPage",
    "StreamRequest",
    "create_stream",
    "delete_stream",
    "image_content",
    "image_detections",
    "image_link",
    "images_index",
    "stream_frames",
    "stream_status",
    "streams_index",
]

_IMAGE_STATUSES = ("pending", "done", "rejected")

_MAX_BODY = 8192
_IMAGE_MEDIA = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}

# Seconds a client refused by a stream quota waits before trying again. Not the idle-expiry horizon:
# that bounds only idle streams, while a stopped or ended one frees its place at once, so a short
# fixed interval lets a client poll cheaply without promising a time the API cannot know.
_RETRY_QUOTA_S = "60"


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    fps: float = Field(default=1.0, gt=0)
    model: str | None = Field(default=None, max_length=200)
    keyframes_only: bool = False


class _Answer(BaseModel):
    # Answers forbid keys they do not declare, so a column added to a query cannot leave undocumented.
    model_config = ConfigDict(extra="forbid")


class Detection(_Answer):
    model: str
    class_id: int
    label: str
    score: float
    box: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in source pixels")


class Image(_Answer):
    id: int
    bucket: str
    key: str
    bytes: int
    format: str | None
    width: int | None
    height: int | None
    status: Literal["pending", "done", "rejected"]
    reason: str | None
    model: str | None
    detected_at: datetime | None
    created_at: datetime


class ImageDetections(_Answer):
    image: Image
    detections: list[Detection]


class ImageLink(_Answer):
    url: str = Field(description="a signed URL of the bytes (absolute), or the API's content route (relative)")
    signed: bool = Field(description="true: read it with nothing else (no API key); false: read it with the key")
    expires_at: datetime | None = Field(description="when a signed URL stops working")


class ImageSummary(_Answer):
    id: int
    bucket: str
    key: str
    status: Literal["pending", "done", "rejected"]
    reason: str | None
    format: str | None
    width: int | None
    height: int | None
    model: str | None
    detected_at: datetime | None
    created_at: datetime
    detections: int


class ImagePage(_Answer):
    items: list[ImageSummary]
    next_cursor: str | None


class Stream(_Answer):
    id: int
    url: str
    fps: float
    keyframes_only: bool
    model: str | None
    owner: str = Field(description="the API key that registered the stream; quotas count per owner")
    status: Literal["pending", "running", "retrying", "ended", "stopped", "failed", "expired"] = Field(
        description="failed: the source can never be read as registered; expired: no frame for the idle limit"
    )
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None = Field(description="redacted: names the failure, never the URL nor the decoder's text")
    last_error_code: str | None = Field(description="which failure last_error is, for clients that branch on it")
    frames_done: int
    frames_dropped: int
    last_frame_ts: float | None
    created_at: datetime
    updated_at: datetime


class StreamAnswer(_Answer):
    stream: Stream


class StreamPage(_Answer):
    items: list[Stream]
    next_cursor: str | None


class Frame(_Answer):
    frame_ts: float
    detections: list[Detection]


class FramePage(_Answer):
    items: list[Frame]
    next_cursor: str | None = Field(
        description="after the last frame served (or the cursor sent when no frame is newer): a running "
        "stream adds frames, so a client follows it by polling with this cursor"
    )


class _FrameKey(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    stream: int
    frame_ts: float


def image_detections(call: Call) -> ImageDetections:
    image_id = call.id
    with call.services.db.connection() as conn:
        image = get_image(conn, image_id)
        found = detections_for_image(conn, image_id) if image else []
        conn.commit()
    if image is None:
        raise not_found("image")
    return ImageDetections.model_validate({"image": image, "detections": found})


def _viewable(call: Call) -> tuple[dict[str, Any], str]:
    """The image row and its media type; 404 when there is no such image, 409 when it is not viewable."""
    with call.services.db.connection() as conn:
        image = get_image(conn, call.id)
        conn.commit()
    if image is None:
        raise not_found("image")
    media_type = _IMAGE_MEDIA.get((image["format"] or "").lower())
    if media_type is None:
        raise ApiError(409, "not_viewable", "the image was not decoded as a viewable format")
    return image, media_type


def image_content(call: Call) -> Asset | HttpResponse:
    """The image's bytes, read through the Blob port with the caller's key (the console draws its
    boxes over them). Only decoded formats are served, under their own media type, so a stored
    object is never handed to a browser as something it could run. Where the store signs URLs (the
    cloud) the answer is a 307 to a short-lived signed GET instead: the bytes never pass through
    the function. (A client following it should not forward its API key to the bucket's host.)"""
    svc = call.services
    image, media_type = _viewable(call)
    signed = svc.blob.read_url(image["bucket"], image["key"], expires_s=svc.settings.image_url_ttl_s)
    if signed is not None:
        return HttpResponse(
            status=307, headers={"location": signed, "cache-control": "no-store", "content-type": "text/plain"}
        )
    try:
        with svc.blob.open(image["bucket"], image["key"], max_bytes=svc.settings.image_max_bytes) as reader:
            content = reader.read()
    except ObjectNotFound:
        raise not_found("image object") from None
    return Asset(content, media_type, cache="private, max-age=300")


def image_link(call: Call) -> ImageLink:
    """Where the console reads an image from: the signed URL (no key travels to the bucket's host),
    or, where the store signs nothing, the content route with the key."""
    svc = call.services
    image, _ = _viewable(call)
    ttl = svc.settings.image_url_ttl_s
    signed = svc.blob.read_url(image["bucket"], image["key"], expires_s=ttl)
    if signed is None:
        return ImageLink(url=f"images/{call.id}/content", signed=False, expires_at=None)
    return ImageLink(url=signed, signed=True, expires_at=datetime.now(UTC) + timedelta(seconds=ttl))


def images_index(call: Call) -> ImagePage:
    """Newest first; a full page carries the cursor of its last (oldest) image."""
    status, limit = call.query["status"], call.query["limit"]
    after = decode_cursor(call.query["cursor"], "images", IdKey)
    if status is not None and status not in _IMAGE_STATUSES:
        raise ApiError(400, "invalid_parameter", f"status must be one of {', '.join(_IMAGE_STATUSES)}")
    with call.services.db.connection() as conn:
        rows = list_images(conn, status=status, before=None if after is None else after.id, limit=limit)
        conn.commit()
    full = len(rows) == limit
    return ImagePage.model_validate(
        {"items": rows, "next_cursor": encode_cursor("images", IdKey(id=rows[-1]["id"])) if full else None}
    )


def create_stream(call: Call) -> Created:
    s = call.services.settings
    body = json_body(call.request, StreamRequest, what="stream registration", max_bytes=_MAX_BODY)
    if body.fps > s.stream_max_fps:
        raise ApiError(400, "invalid_body", f"fps must be at most {s.stream_max_fps:g}")
    if body.fps < s.stream_min_fps:
        raise ApiError(400, "invalid_body", f"fps must be at least {s.stream_min_fps:g}")
    try:
        validate_stream_url(
            body.url,
            allow_files=s.stream_allow_file_urls,
            policy=AddressPolicy.from_networks(s.http_allow_networks),
        )
    except PoisonError as exc:
        raise ApiError(400, "url_refused", str(exc)) from None
    with call.services.db.connection() as conn:
        try:
            row = register_stream(
                conn,
                body.url,
                body.fps,
                model=body.model,
                keyframes_only=body.keyframes_only,
                owner=owner_of(call),
                max_active=s.stream_max_active,
                max_per_owner=max_streams_of(call),
            )
        except StreamQuotaExceeded as exc:
            conn.rollback()
            raise ApiError(429, "stream_quota_exceeded", str(exc), headers={"retry-after": _RETRY_QUOTA_S}) from None
        conn.commit()
    answer = StreamAnswer.model_validate({"stream": row})
    return Created(answer, f"/streams/{answer.stream.id}")


def streams_index(call: Call) -> StreamPage:
    """Newest first; a full page carries the cursor of its last (oldest) stream."""
    limit = call.query["limit"]
    after = decode_cursor(call.query["cursor"], "streams", IdKey)
    with call.services.db.connection() as conn:
        rows = list_streams(conn, before=None if after is None else after.id, limit=limit)
        conn.commit()
    full = len(rows) == limit
    return StreamPage.model_validate(
        {"items": rows, "next_cursor": encode_cursor("streams", IdKey(id=rows[-1]["id"])) if full else None}
    )


def stream_status(call: Call) -> StreamAnswer:
    return _one_stream(call.services, get_stream, call.id)


def stream_frames(call: Call) -> FramePage:
    """Frames oldest first, after the cursor's frame; the cursor names its stream, so it cannot
    page another one."""
    stream_id, frames, cursor = call.id, call.query["limit"], call.query["cursor"]
    after = decode_cursor(cursor, "stream_detections", _FrameKey)
    if after is not None and after.stream != stream_id:
        raise bad_param("cursor", "belongs to another stream")
    with call.services.db.connection() as conn:
        if get_stream(conn, stream_id) is None:
            conn.commit()
            raise not_found("stream")
        found = stream_detections(conn, stream_id, after=None if after is None else after.frame_ts, frames=frames)
        conn.commit()
    last = _FrameKey(stream=stream_id, frame_ts=found[-1]["frame_ts"]) if found else None
    return FramePage.model_validate(
        {"items": found, "next_cursor": encode_cursor("stream_detections", last) if last else cursor}
    )


def delete_stream(call: Call) -> StreamAnswer:
    return _one_stream(call.services, stop_stream, call.id)


def _one_stream(
    services: Services, operation: Callable[[Any, int], dict[str, Any] | None], stream_id: int
) -> StreamAnswer:
    with services.db.connection() as conn:
        row = operation(conn, stream_id)
        conn.commit()
    if row is None:
        raise not_found("stream")
    return StreamAnswer.model_validate({"stream": row})
