"""Safe decode: format allowlist by magic bytes, byte cap, pixel cap read from the header."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from shared.vision.decode import ImageRejected, decode_image, sniff_format

CAPS = {"max_bytes": 5_000_000, "max_pixels": 4_000_000}


def encoded(fmt: str, width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)).save(buf, fmt)
    return buf.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height pixels, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp")])
def test_allowed_formats_decode_to_rgb(fmt: str, name: str) -> None:
    img = decode_image(encoded(fmt), **CAPS)
    assert (img.format, img.width, img.height, img.pixels.shape, img.pixels.dtype) == (
        name,
        64,
        48,
        (48, 64, 3),
        np.uint8,
    )


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_formats_outside_the_allowlist_are_refused(fmt: str) -> None:
    with pytest.raises(ImageRejected) as info:
        decode_image(encoded(fmt), **CAPS)
    assert info.value.reason == "unsupported_format"


def test_a_text_file_named_like_a_jpeg_is_refused_by_its_bytes() -> None:
    assert sniff_format(b"name,artist\nx,y\n") is None
    with pytest.raises(ImageRejected, match="not a JPEG, PNG or WebP"):
        decode_image(b"name,artist\nx,y\n", **CAPS)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # GIVEN 60 bytes declaring 50,000 x 50,000 pixels (7.5 GB decoded)
    bomb = png_bomb(50_000, 50_000)
    assert len(bomb) < 100
    # WHEN decoded THEN it is refused from the header alone
    with pytest.raises(ImageRejected) as info:
        decode_image(bomb, **CAPS)
    assert info.value.reason == "too_many_pixels"


def test_pixel_cap_applies_to_real_images_too() -> None:
    with pytest.raises(ImageRejected, match="pixels"):
        decode_image(encoded("PNG", 300, 300), max_bytes=10**7, max_pixels=300 * 299)


def test_byte_cap_is_checked_first() -> None:
    with pytest.raises(ImageRejected) as info:
        decode_image(encoded("PNG"), max_bytes=100, max_pixels=10**8)
    assert info.value.reason == "too_large"


def test_truncated_image_is_refused_as_corrupt() -> None:
    data = encoded("JPEG", 256, 256)
    with pytest.raises(ImageRejected) as info:
        decode_image(data[: len(data) // 3], **CAPS)
    assert info.value.reason == "corrupt"


def test_jpeg_draft_keeps_the_original_size_for_mapping_boxes_back() -> None:
    img = decode_image(encoded("JPEG", 1280, 960), max_bytes=10**7, max_pixels=10**8, draft_to=320)
    assert (img.width, img.height) == (1280, 960)
    assert img.pixels.shape[1] < 1280 and img.pixels.shape[1] >= 320
