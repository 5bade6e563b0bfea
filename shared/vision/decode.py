"""Safe image decoding: byte cap, format allowlist by magic bytes, pixel cap checked from the header.

The pixel cap is enforced *before* any pixel is decoded: a 40 KB PNG can declare 50,000 x 50,000
pixels and would need 7.5 GB once decoded (a decompression bomb). Pillow reads only the header on
``Image.open``, so the declared size is checked first and the decode happens only if it fits.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shared.errors import PoisonError

__all__ = ["ALLOWED_FORMATS", "DecodedImage", "ImageRejected", "check_image", "decode_image", "sniff_format"]

ImageFormat = Literal["jpeg", "png", "webp"]
ALLOWED_FORMATS: tuple[ImageFormat, ...] = ("jpeg", "png", "webp")
_PIL_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


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


def check_image(data: bytes, *, max_bytes: int, max_pixels: int) -> tuple[ImageFormat, int, int]:
    """Every check :func:`decode_image` makes, from the bytes and the header only: (format, width, height)."""
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"image is {len(data):,} bytes; the cap is {max_bytes:,}")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected("unsupported_format", "not a JPEG, PNG or WebP image")
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_PIL_NAMES[fmt]]) as img:
                width, height = img.size
    except Image.DecompressionBombError:
        raise ImageRejected("too_many_pixels", f"image declares more pixels than the cap of {max_pixels:,}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageRejected("corrupt", f"image header could not be read: {type(exc).__name__}") from None
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise ImageRejected("too_many_pixels", f"image declares {width}x{height} pixels; the cap is {max_pixels:,}")
    return fmt, width, height


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, draft_to: int | None = None) -> DecodedImage:
    """Decode to RGB uint8, refusing anything outside the caps with :class:`ImageRejected`.

    ``draft_to``: for JPEG, let the decoder scale down by a power of two while staying at least this
    many pixels on the longer side (much faster than decoding at full size and resizing after).
    """
    fmt, width, height = check_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Our own cap was checked from the header; Pillow's global guard must not get in its way.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[_PIL_NAMES[fmt]])
            if draft_to and fmt == "jpeg":
                img.draft("RGB", (draft_to, draft_to))
            img.load()
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            pixels = np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageRejected("corrupt", f"image could not be decoded: {type(exc).__name__}") from None
    return DecodedImage(pixels=pixels, format=fmt, width=width, height=height)
