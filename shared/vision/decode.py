"""Safe image decoding: byte cap, format allowlist by magic bytes, pixel cap checked from the header.

The pixel cap is enforced *before* any pixel is decoded: a 40 KB PNG can declare 50,000 x 50,000
pixels and would need 7.5 GB once decoded (a decompression bomb). The declared size is read from
the header bytes (JPEG frame header, PNG IHDR, WebP VP8/VP8L/VP8X) and checked first; the decode
happens only if it fits, and a decoded size that differs from the declared one is refused.

Decoding uses OpenCV (libjpeg-turbo, libpng, libwebp): it releases the GIL for the whole decode and
returns the pixel array itself, so a pool of decode threads scales with the cores. The same work
through Pillow holds the GIL while it copies the pixels out (``tobytes``) and while it parses the
header in Python, which caps a multi-core image pipeline well below what the GPU can take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from shared.errors import PoisonError

__all__ = [
    "ALLOWED_FORMATS",
    "DecodedImage",
    "ImageRejected",
    "check_image",
    "declared_size",
    "decode_image",
    "sniff_format",
]

ImageFormat = Literal["jpeg", "png", "webp"]
ALLOWED_FORMATS: tuple[ImageFormat, ...] = ("jpeg", "png", "webp")

# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, without a length: TEM and the restart markers.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# EXIF orientation is not applied: boxes are reported in the stored pixel grid, whose size is the
# one the header declares. RGB out (OpenCV >= 4.11); older builds decode BGR and convert.
_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_FLAGS = (cv2.IMREAD_COLOR if _RGB is None else _RGB) | cv2.IMREAD_IGNORE_ORIENTATION
# JPEG decoded at 1/2, 1/4 or 1/8 size in the DCT domain. Only the scale bits: the _GRAYSCALE_ names
# carry no colour bit, which is set by _FLAGS.
_REDUCED = {
    1: 0,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


class ImageRejected(PoisonError):
    """The image can never be processed (format, size, pixels, corrupt); ``reason`` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DecodedImage:
    """RGB pixels (H, W, 3) uint8 plus the facts recorded on the image row.

    ``width`` and ``height`` are the image's own size; the pixels may be smaller when the decoder
    was allowed to scale down (JPEG draft), and boxes are mapped back to the original size.
    """

    pixels: np.ndarray
    format: str  # an ImageFormat, or "frame" for a decoded video frame
    width: int
    height: int


def sniff_format(data: bytes) -> ImageFormat | None:
    """The format from the magic bytes; never from the file name or a declared content type."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def declared_size(data: bytes, fmt: ImageFormat) -> tuple[int, int]:
    """(width, height) as the header declares them; ``ImageRejected("corrupt")`` if it cannot be read."""
    size = {"jpeg": _jpeg_size, "png": _png_size, "webp": _webp_size}[fmt](data)
    if size is None:
        raise ImageRejected("corrupt", f"{fmt.upper()} header could not be read")
    return size


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":  # IHDR must be the first chunk
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if kind == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def check_image(data: bytes, *, max_bytes: int, max_pixels: int) -> tuple[ImageFormat, int, int]:
    """Every check :func:`decode_image` makes, from the bytes and the header only: (format, width, height)."""
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"image is {len(data):,} bytes; the cap is {max_bytes:,}")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected("unsupported_format", "not a JPEG, PNG or WebP image")
    width, height = declared_size(data, fmt)
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise ImageRejected("too_many_pixels", f"image declares {width}x{height} pixels; the cap is {max_pixels:,}")
    return fmt, width, height


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, draft_to: int | None = None) -> DecodedImage:
    """Decode to RGB uint8, refusing anything outside the caps with :class:`ImageRejected`.

    ``draft_to``: for JPEG, let the decoder scale down by a power of two while staying at least this
    many pixels on the longer side (much faster than decoding at full size and resizing after).
    """
    fmt, width, height = check_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    factor = 1
    if draft_to and fmt == "jpeg":
        while factor < 8 and max(width, height) // (factor * 2) >= draft_to:
            factor *= 2
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), _FLAGS | _REDUCED[factor])
    except cv2.error as exc:
        raise ImageRejected("corrupt", f"image could not be decoded: {exc.err or 'decoder error'}") from None
    if pixels is None:
        raise ImageRejected("corrupt", "image could not be decoded (truncated or damaged data)")
    expected = (-(-height // factor), -(-width // factor))
    if pixels.shape[:2] != expected or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageRejected(
            "corrupt", f"decoded {pixels.shape[1]}x{pixels.shape[0]} pixels; the header declares {width}x{height}"
        )
    if _RGB is None:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return DecodedImage(pixels=pixels, format=fmt, width=width, height=height)
