"""One detected object: what the detector returns, the store writes and the API reads.

Its own module so that what only stores or serves detections (ingest, the API) does not import the
detector and the model tooling it loads.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Detection"]


@dataclass(frozen=True)
class Detection:
    class_id: int
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the original image's pixels
