"""``/images/{id}/detections`` and ``/streams`` for the API core.

Errors name the problem, never the submitted URL: a refused stream says which rule it broke.
Streams count against quotas per owner: the API key that registered them. Until keys have names,
every stream belongs to the one shared key (``SHARED_KEY_OWNER``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.api.errors import ApiError, not_found
from functions.api.params import json_body
from functions.api.routing import Call
from shared.errors import PoisonError
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
    "SHARED_KEY_OWNER",
    "StreamRequest",
    "create_stream",
    "delete_stream",
    "image_detections",
    "images_index",
    "stream_frames",
    "stream_status",
    "streams_index",
]

_IMAGE_STATUSES = ("pending", "done", "rejected")

_MAX_BODY = 8192

# The owner of every stream registered with the one shared API key.
SHARED_KEY_OWNER = "shared-key"


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    fps: float = Field(default=1.0, gt=0)
    model: str | None = Field(default=None, max_length=200)
    keyframes_only: bool = False


def image_detections(call: Call) -> dict[str, Any]:
    image_id = call.id
    with call.services.db.connection() as conn:
        image = get_image(conn, image_id)
        found = detections_for_image(conn, image_id) if image else []
        conn.commit()
    if image is None:
        raise not_found("image")
    return {"image": image, "detections": found}


def images_index(call: Call) -> dict[str, Any]:
    status, before, limit = call.query["status"], call.query["before"], call.query["limit"]
    if status is not None and status not in _IMAGE_STATUSES:
        raise ApiError(400, "invalid_parameter", f"status must be one of {', '.join(_IMAGE_STATUSES)}")
    with call.services.db.connection() as conn:
        rows = list_images(conn, status=status, before=before, limit=limit)
        conn.commit()
    return {"images": rows, "next_before": rows[-1]["id"] if len(rows) == limit else None}


def create_stream(call: Call) -> dict[str, Any]:
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
                owner=SHARED_KEY_OWNER,
                max_active=s.stream_max_active,
                max_per_owner=s.stream_max_per_owner,
            )
        except StreamQuotaExceeded as exc:
            conn.rollback()
            raise ApiError(429, "stream_quota_exceeded", str(exc)) from None
        conn.commit()
    return {"stream": row}


def streams_index(call: Call) -> dict[str, Any]:
    with call.services.db.connection() as conn:
        rows = list_streams(conn, limit=call.query["limit"])
        conn.commit()
    return {"streams": rows}


def stream_status(call: Call) -> dict[str, Any]:
    return _one_stream(call.services, get_stream, call.id)


def stream_frames(call: Call) -> dict[str, Any]:
    """Frames after ``after`` (a frame timestamp; pass the last one seen as ``next_after`` to page)."""
    stream_id, after, frames = call.id, call.query["after"], call.query["limit"]
    since: float | None = None
    if after is not None:
        try:
            since = float(after)
        except ValueError:
            since = math.nan
        if not math.isfinite(since):
            raise ApiError(400, "invalid_parameter", "after must be a frame timestamp (a finite number)")
    with call.services.db.connection() as conn:
        if get_stream(conn, stream_id) is None:
            conn.commit()
            raise not_found("stream")
        found = stream_detections(conn, stream_id, after=since, frames=frames)
        conn.commit()
    return {"frames": found, "next_after": found[-1]["frame_ts"] if found else after}


def delete_stream(call: Call) -> dict[str, Any]:
    return _one_stream(call.services, stop_stream, call.id)


def _one_stream(
    services: Services, operation: Callable[[Any, int], dict[str, Any] | None], stream_id: int
) -> dict[str, Any]:
    with services.db.connection() as conn:
        row = operation(conn, stream_id)
        conn.commit()
    if row is None:
        raise not_found("stream")
    return {"stream": row}
