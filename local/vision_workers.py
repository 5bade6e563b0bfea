"""The GPU service's loops in the local runtime, on CPU: image detection jobs and streams."""

from __future__ import annotations

from typing import Any

from shared.services import Services

__all__ = ["vision_loops"]


def vision_loops(services: Services) -> list[Any]:
    """The image worker and the stream supervisor, sharing one detector; none if no model is present.

    Without a detector model the rest of the stack still runs: images wait in the queue until a
    worker with a model starts.
    """
    from local.roles import detect_parts, load_local_detector, stream_parts

    detector = load_local_detector(services)
    if detector is None:
        return []
    worker, *health = detect_parts(services, detector)
    return [worker, *stream_parts(services, detector), *health]
