"""The real YOLOv8n-architecture detector shipped in the ``nudenet`` wheel, on scikit-image's photos."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from shared.vision.decode import decode_image
from shared.vision.detector import Detector, ModelSpec, default_model_path
from tests.conftest import need


@pytest.fixture(scope="module")
def detector() -> Detector:
    path = default_model_path()
    need(path is not None, "the nudenet wheel (its 320n.onnx) is not installed")
    assert path is not None
    return Detector(ModelSpec(path=path, score_threshold=0.35))


def photo_jpeg(name: str) -> bytes:
    skdata = pytest.importorskip("skimage.data")
    pixels = np.asarray(getattr(skdata, name)())
    buf = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_real_detector_finds_the_astronauts_face(detector: Detector) -> None:
    # GIVEN the astronaut photo as a JPEG, decoded safely
    image = decode_image(photo_jpeg("astronaut"), max_bytes=10**7, max_pixels=10**8)
    # WHEN detected
    (found,) = detector.detect([image])
    # THEN the model's own labels are used and a female face is found on her face (around 170..280, 80..190)
    assert detector.layout == "yolov8" and detector.input_size == 320
    faces = [d for d in found if d.label == "FACE_FEMALE"]
    assert faces and faces[0].score > 0.6
    x1, y1, x2, y2 = faces[0].box
    assert 180 < (x1 + x2) / 2 < 270 and 90 < (y1 + y2) / 2 < 190
    assert 50 < x2 - x1 < 160


def test_real_detector_batches_agree_with_single_images(detector: Detector) -> None:
    images = [decode_image(photo_jpeg(n), max_bytes=10**7, max_pixels=10**8) for n in ("astronaut", "camera", "coffee")]
    batched = detector.detect(images)
    single = [detector.detect([i])[0] for i in images]
    assert [[d.label for d in r] for r in batched] == [[d.label for d in r] for r in single]
    assert any(d.label == "FACE_MALE" for d in batched[1])
    assert not any(d.score >= 0.35 for d in batched[2])  # coffee: nothing at the threshold


def test_half_precision_finds_what_full_precision_finds(detector: Detector) -> None:
    # GIVEN the same model loaded in fp16 (weights and arithmetic; input and output stay float32)
    half = Detector(replace(detector.spec, precision="fp16"))
    images = [decode_image(photo_jpeg(n), max_bytes=10**7, max_pixels=10**8) for n in ("astronaut", "camera", "coffee")]
    # WHEN both detect the same photos
    full, halved = detector.detect(images), half.detect(images)
    # THEN the raw outputs carry fp16 rounding (the half-precision model ran) yet stay close ...
    pixels = np.stack([detector.prepare(i).lb.canvas for i in images])
    raw_full, raw_half = detector.run_raw(pixels), half.run_raw(pixels)
    assert raw_half.dtype == np.float32 and not np.array_equal(raw_full, raw_half)
    # (rows: box, best score, best class; the class of a near-tied weak candidate may flip)
    np.testing.assert_allclose(raw_half[:, :5], raw_full[:, :5], rtol=0.02, atol=0.5)
    # ... and each photo gets the same labels, boxes within 2 % of the photo, scores within 0.02
    assert [len(r) for r in full] == [len(r) for r in halved] and full[0] and full[1]
    for a, b, image in zip(full, halved, images, strict=True):
        assert [d.label for d in a] == [d.label for d in b]
        for da, db in zip(a, b, strict=True):
            assert abs(da.score - db.score) < 0.02
            assert max(abs(p - q) for p, q in zip(da.box, db.box, strict=True)) < 0.02 * max(image.width, image.height)
