"""Letterbox (OpenCV), YOLO-family output layouts and vectorised per-class NMS (numpy).

Layouts, as exported by their projects:
- ``yolov8`` (also YOLO11): ``[B, 4+C, N]``: cx, cy, w, h in input pixels, then C class scores; no objectness.
- ``yolov5``: ``[B, N, 5+C]``: cx, cy, w, h, objectness, C class scores; score = objectness x class.
- ``yolox``: ``[B, N, 5+C]`` with N = one row per cell of the stride-8/16/32 grids (no anchors); boxes
  are raw: xy = (raw + cell) x stride, wh = exp(raw) x stride.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

__all__ = [
    "Candidates",
    "Layout",
    "Letterboxed",
    "decode_layout",
    "guess_layout",
    "letterbox",
    "letterbox_into",
    "nms",
    "yolox_grid",
]

Layout = Literal["yolov5", "yolov8", "yolox"]
_PAD_VALUE = 114
_YOLOX_STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Letterboxed:
    """An image resized to fit ``size x size`` with its aspect ratio kept, padded with grey."""

    canvas: np.ndarray  # (size, size, 3) uint8
    ratio: float  # input pixels per decoded pixel
    pad_x: float
    pad_y: float


def letterbox(pixels: np.ndarray, size: int, *, center: bool = True) -> Letterboxed:
    """Fit ``pixels`` (H, W, 3 uint8) into a new square canvas; ``center=False`` pads right/bottom (YOLOX)."""
    return letterbox_into(pixels, np.empty((size, size, 3), np.uint8), center=center)


def letterbox_into(pixels: np.ndarray, canvas: np.ndarray, *, center: bool = True) -> Letterboxed:
    """Letterbox ``pixels`` straight into ``canvas`` (a (size, size, 3) uint8 array, such as one row of
    a batch buffer): no canvas of its own is allocated and nothing is copied twice.

    OpenCV resizes (bilinear, as the YOLO projects do when they train; area averaging when shrinking
    by more than half, which keeps small details) into the canvas's inner region, without the GIL;
    only the padding around it is filled with grey.
    """
    import cv2

    size = canvas.shape[0]
    if canvas.shape != (size, size, 3) or canvas.dtype != np.uint8:
        raise ValueError(f"canvas must be a square (size, size, 3) uint8 array, not {canvas.shape} {canvas.dtype}")
    h, w = pixels.shape[:2]
    ratio = min(size / h, size / w)
    new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    pad_x = (size - new_w) // 2 if center else 0
    pad_y = (size - new_h) // 2 if center else 0
    bottom, right = pad_y + new_h, pad_x + new_w
    inner = canvas[pad_y:bottom, pad_x:right]
    if (new_w, new_h) == (w, h):
        np.copyto(inner, pixels)
    else:
        interpolation = cv2.INTER_AREA if ratio < 0.5 else cv2.INTER_LINEAR
        out = cv2.resize(np.ascontiguousarray(pixels), (new_w, new_h), dst=inner, interpolation=interpolation)
        if not np.shares_memory(out, canvas):  # a strided view OpenCV would not write into
            inner[...] = out
    canvas[:pad_y] = _PAD_VALUE
    canvas[bottom:] = _PAD_VALUE
    canvas[pad_y:bottom, :pad_x] = _PAD_VALUE
    canvas[pad_y:bottom, right:] = _PAD_VALUE
    return Letterboxed(canvas=canvas, ratio=ratio, pad_x=float(pad_x), pad_y=float(pad_y))


@lru_cache(maxsize=8)
def yolox_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (N, 2) and strides (N, 1) of YOLOX's stride-8/16/32 grids, in output row order."""
    cells, strides = [], []
    for stride in _YOLOX_STRIDES:
        n = size // stride
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((n * n, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def guess_layout(output_shape: tuple[int, ...], input_size: int) -> Layout:
    """The layout from the output's shape: channels-first is YOLOv8; one row per grid cell is YOLOX."""
    if len(output_shape) != 3:
        raise ValueError(f"expected a 3-d detector output, got shape {output_shape}")
    _, a, b = output_shape
    if a < b:
        return "yolov8"
    if a == len(yolox_grid(input_size)[0]):
        return "yolox"
    return "yolov5"


@dataclass(frozen=True)
class Candidates:
    """One image's boxes above the score threshold: xyxy in model-input pixels."""

    boxes: np.ndarray  # (K, 4) float32
    scores: np.ndarray  # (K,) float32
    classes: np.ndarray  # (K,) int64


def decode_layout(
    output: np.ndarray,
    layout: Layout,
    input_size: int,
    score_threshold: float,
    max_candidates: int = 1000,
    *,
    reduced: bool = False,
) -> list[Candidates]:
    """Turn a batch of raw outputs into thresholded candidates per image (before NMS).

    Only the best class score of every row is computed over the whole batch; boxes and class ids
    are gathered for the few rows above the threshold. A YOLOv8 output at 640 is ~0.7 MB per image,
    so transposing or decoding it whole would cost more than the rest of the post-processing.

    ``reduced``: the model already gives, per row, the four box numbers, the best score (weighed by
    objectness for YOLOv5 / YOLOX) and its class (see ``shared.vision.graph``).
    """
    # Best class score per row, (B, N); YOLOv5 and YOLOX weigh it by objectness.
    if reduced:
        best = output[:, 4, :] if layout == "yolov8" else output[:, :, 4]
    elif layout == "yolov8":
        best = output[:, 4:, :].max(axis=1)
    else:
        best = output[:, :, 5:].max(axis=2) * output[:, :, 4]
    out = []
    for i in range(output.shape[0]):
        keep = np.flatnonzero(best[i] >= score_threshold)
        if len(keep) > max_candidates:
            keep = keep[np.argsort(-best[i][keep])[:max_candidates]]
        if layout == "yolov8":
            # Mixed basic/advanced indexing puts the kept rows first: (K, 4) and (K, C).
            xywh = output[i, :4, keep].astype(np.float32).reshape(-1, 4)
            if reduced:
                classes = output[i, 5, keep].astype(np.int64)
            else:
                classes = output[i, 4:, keep].reshape(len(keep), output.shape[1] - 4).argmax(axis=1)
        else:
            rows = output[i, keep]
            xywh = rows[:, :4].astype(np.float32)
            classes = rows[:, 5].astype(np.int64) if reduced else rows[:, 5:].argmax(axis=1)
            if layout == "yolox":
                cells, strides = yolox_grid(input_size)
                xy = (xywh[:, :2] + cells[keep]) * strides[keep]
                wh = np.exp(np.minimum(xywh[:, 2:4], 20.0)) * strides[keep]
                xywh = np.concatenate([xy, wh], axis=1)
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
        out.append(
            Candidates(
                boxes=boxes.astype(np.float32),
                scores=best[i][keep].astype(np.float32),
                classes=np.asarray(classes, dtype=np.int64).reshape(-1),
            )
        )
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float, max_keep: int) -> np.ndarray:
    """Per-class greedy NMS; returns kept indices, best score first.

    Boxes of different classes are shifted apart by more than the whole coordinate range, so one
    IoU matrix serves every class at once; the greedy pass walks rows of that matrix.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    offset = (float(np.abs(boxes).max()) + 1.0) * 2.0
    b = boxes[order] + (classes[order].astype(np.float32) * offset)[:, None]
    area = (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(axis=2)
    iou = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_keep:
            break
        suppressed |= iou[i] > iou_threshold
    return order[np.asarray(keep, dtype=np.int64)]
