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


def _variants() -> list[tuple[str, bytes]]:
    """Encodings a user's bucket holds: baseline, progressive, EXIF, grey and CMYK JPEG; PNG of every
    colour type and depth; lossy, lossless and alpha WebP."""
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (37, 53, 3), np.uint8))
    out = []

    def save(name: str, img: Image.Image, fmt: str, **kw: object) -> None:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        out.append((name, buf.getvalue()))

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated; the stored grid is what boxes refer to
    save("jpeg-baseline", rgb, "JPEG")
    save("jpeg-progressive", rgb, "JPEG", progressive=True)
    save("jpeg-exif", rgb, "JPEG", exif=exif.tobytes())
    save("jpeg-grey", rgb.convert("L"), "JPEG")
    save("jpeg-cmyk", rgb.convert("CMYK"), "JPEG")
    for mode in ("RGB", "RGBA", "L", "LA", "P"):
        save(f"png-{mode}", rgb.convert(mode), "PNG")
    save("png-16bit", Image.fromarray(rng.integers(0, 65535, (37, 53), np.uint16)), "PNG")
    save("webp-lossy", rgb, "WEBP")
    save("webp-lossless", rgb, "WEBP", lossless=True)
    save("webp-alpha", rgb.convert("RGBA"), "WEBP")
    return out


@pytest.mark.parametrize(("name", "data"), _variants(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_common_encoding_decodes_to_rgb_at_its_declared_size(name: str, data: bytes) -> None:
    # GIVEN an image in one of the encodings found in real buckets
    # WHEN it is decoded
    img = decode_image(data, **CAPS)
    # THEN the size read from the header is Pillow's, and the pixels are RGB at that size
    with Image.open(io.BytesIO(data)) as ref:
        assert (img.width, img.height) == ref.size == (53, 37)
    assert img.pixels.shape == (37, 53, 3) and img.pixels.dtype == np.uint8
    if name in ("jpeg-baseline", "png-RGB", "webp-lossless"):
        with Image.open(io.BytesIO(data)) as ref:
            assert np.array_equal(img.pixels, np.asarray(ref.convert("RGB")))


def test_a_header_that_lies_about_its_size_is_refused() -> None:
    # GIVEN a PNG whose IHDR was rewritten to declare another size than its data holds
    data = bytearray(encoded("PNG", 64, 48))
    data[16:24] = struct.pack(">II", 64, 4000)
    # WHEN decoded THEN it is refused as corrupt, never returned at a size nobody checked
    with pytest.raises(ImageRejected) as info:
        decode_image(bytes(data), **CAPS)
    assert info.value.reason == "corrupt"


@pytest.mark.parametrize("cut", [3, 12, 20, 100])
def test_headers_cut_short_are_refused_as_corrupt_not_crashing(cut: int) -> None:
    for fmt in ("JPEG", "PNG", "WEBP"):
        with pytest.raises(ImageRejected) as info:
            decode_image(encoded(fmt)[:cut], **CAPS)
        assert info.value.reason in ("corrupt", "unsupported_format")
