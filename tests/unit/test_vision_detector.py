"""Detector runtime: tiny ONNX models of each YOLO output layout, built here with onnx.helper.

Each tiny model ignores its pixels and returns a fixed output tensor holding known candidate boxes,
so decoding, thresholding, per-class NMS and the mapping back through the letterbox are checked
against boxes computed by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from shared.vision.boxes import guess_layout, letterbox, letterbox_into, nms, yolox_grid
from shared.vision.decode import DecodedImage
from shared.vision.detector import Detector, ModelSpec
from shared.vision.graph import with_uint8_input

SIZE = 64
# Candidates in model-input pixels: (cx, cy, w, h, class, score).
CANDIDATES = [
    (32.0, 32.0, 20.0, 10.0, 0, 0.90),  # A: kept
    (33.0, 32.0, 20.0, 10.0, 0, 0.80),  # B: overlaps A, same class: suppressed
    (32.0, 32.0, 20.0, 10.0, 1, 0.70),  # C: same box as A, other class: kept
    (10.0, 10.0, 6.0, 6.0, 0, 0.20),  # D: below the score threshold
    (50.0, 50.0, 8.0, 8.0, 1, 0.60),  # E: far away: kept
]
EXPECTED = [(0, 0.90, (22, 27, 42, 37)), (1, 0.70, (22, 27, 42, 37)), (1, 0.60, (46, 46, 54, 54))]


def constant_model(path: Path, output: np.ndarray, opset: int = 17, mix: float = 0.0) -> Path:
    """A model with a dynamic-batch image input whose output is ``output`` (broadcast over the batch),
    plus ``mix`` x the mean of each image (so that the output depends on the pixels)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", output.shape[1], output.shape[2]])
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["m", "shape3"], ["m3"]),
        helper.make_node("Mul", ["m3", "zero"], ["z"]),
        helper.make_node("Add", ["z", "const"], ["output0"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), "shape3"),
        numpy_helper.from_array(np.array(mix, dtype=np.float32), "zero"),
        numpy_helper.from_array(output.astype(np.float32), "const"),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def yolov8_output(num_classes: int = 2) -> np.ndarray:
    out = np.zeros((1, 4 + num_classes, 10), dtype=np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(CANDIDATES):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + c, i] = s
    return out


def yolov5_output(num_classes: int = 2) -> np.ndarray:
    out = np.zeros((1, 12, 5 + num_classes), dtype=np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(CANDIDATES):
        # Split the score into objectness x class probability, as YOLOv5 does.
        out[0, i, :5] = (cx, cy, w, h, math.sqrt(s))
        out[0, i, 5 + c] = math.sqrt(s)
    return out


def yolox_output(num_classes: int = 2) -> np.ndarray:
    cells, strides = yolox_grid(SIZE)
    out = np.zeros((1, len(cells), 5 + num_classes), dtype=np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(CANDIDATES):
        row = i * 7  # any row can carry any box once encoded against its own cell and stride
        (gx, gy), (st,) = cells[row], strides[row]
        out[0, row, :4] = (cx / st - gx, cy / st - gy, math.log(w / st), math.log(h / st))
        out[0, row, 4] = 1.0
        out[0, row, 5 + c] = s
    return out


LAYOUTS = {"yolov8": yolov8_output, "yolov5": yolov5_output, "yolox": yolox_output}


def image(width: int, height: int) -> DecodedImage:
    return DecodedImage(pixels=np.zeros((height, width, 3), np.uint8), format="png", width=width, height=height)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_is_detected_from_its_shape_and_decodes_to_the_known_boxes(tmp_path: Path, layout: str) -> None:
    # GIVEN a tiny model of this layout and a square image at twice the model's input size
    path = constant_model(tmp_path / f"{layout}.onnx", LAYOUTS[layout]())
    detector = Detector(ModelSpec(path=path, score_threshold=0.35, labels=("cat", "dog")))
    # WHEN a batch of two images is detected
    results = detector.detect([image(128, 128), image(128, 128)])
    # THEN the layout was recognised and each image gets A, C and E, mapped back to original pixels
    assert detector.layout == layout
    for found in results:
        got = [(d.class_id, round(d.score, 3), tuple(round(v) for v in d.box)) for d in found]
        want = [(c, s, tuple(2 * v for v in box)) for c, s, box in EXPECTED]
        assert got == want
        assert [d.label for d in found] == ["cat", "dog", "dog"]


def test_letterbox_padding_is_removed_when_boxes_are_mapped_back(tmp_path: Path) -> None:
    # GIVEN a 128 x 64 image: scaled by 0.5 to 64 x 32 and centred with 16 rows of padding on top
    detector = Detector(ModelSpec(path=constant_model(tmp_path / "v8.onnx", yolov8_output())))
    # WHEN detected
    (found,) = detector.detect([image(128, 64)])
    # THEN y is shifted by the padding before scaling back: A's 27..37 becomes 22..42
    assert tuple(round(v) for v in found[0].box) == (44, 22, 84, 42)
    assert found[0].label == "class_0"  # no labels given or in the model's metadata


def test_layout_and_preprocessing_can_be_forced_in_config(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "x.onnx", yolox_output())
    detector = Detector(ModelSpec(path=path, layout="yolox", input_size=SIZE, channel_order="rgb", scale=0.5))
    assert (detector.layout, detector.spec.channel_order, detector.spec.scale) == ("yolox", "rgb", 0.5)


@pytest.mark.parametrize(("order", "scale", "expected"), [("rgb", 1 / 255, (10, 20, 30)), ("bgr", 1.0, (30, 20, 10))])
def test_uint8_prefix_graph_orders_channels_and_scales(
    tmp_path: Path, order: str, scale: float, expected: tuple
) -> None:
    # GIVEN a model that returns the mean of each input channel
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])
    y = helper.make_tensor_value_info("means", TensorProto.FLOAT, ["batch", 3, 1, 1])
    graph = helper.make_graph([helper.make_node("ReduceMean", ["images"], ["means"], axes=[2, 3])], "m", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    # WHEN it is wrapped for uint8 NHWC input and fed an RGB image (10, 20, 30)
    wrapped = with_uint8_input(model.SerializeToString(), SIZE, channel_order=order, scale=scale)  # type: ignore[arg-type]
    assert wrapped is not None and wrapped[1] is False  # no detector layout given: outputs untouched
    session = ort.InferenceSession(wrapped[0], providers=["CPUExecutionProvider"])
    pixels = np.zeros((2, SIZE, SIZE, 3), np.uint8) + np.array([10, 20, 30], np.uint8)
    (out,) = session.run(None, {session.get_inputs()[0].name: pixels})
    # THEN the model sees the channels in its order, scaled
    assert out.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(out[0, :, 0, 0], np.array(expected) * (scale if order == "rgb" else 1.0), rtol=1e-4)


def test_nms_is_per_class_and_best_first() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.5, 0.9, 0.8, 0.7], np.float32)
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, classes, 0.5, 100).tolist() == [1, 2, 3]
    assert nms(boxes, scores, classes, 0.5, 2).tolist() == [1, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), 0.5, 10).tolist() == []


def test_guess_layout_from_output_shapes() -> None:
    assert guess_layout((1, 84, 8400), 640) == "yolov8"
    assert guess_layout((1, 25200, 85), 640) == "yolov5"
    assert guess_layout((1, 8400, 85), 640) == "yolox"


def test_letterbox_keeps_aspect_and_centres() -> None:
    lb = letterbox(np.full((100, 200, 3), 7, np.uint8), 64)
    assert lb.canvas.shape == (64, 64, 3) and lb.ratio == pytest.approx(0.32)
    assert (lb.pad_x, lb.pad_y) == (0, 16)
    assert lb.canvas[0, 0, 0] == 114 and lb.canvas[32, 32, 0] == 7


def _reference_letterbox(pixels: np.ndarray, size: int, center: bool) -> np.ndarray:
    """The two-step letterbox (resize to a new image, then pad it into a new canvas)."""
    import cv2

    h, w = pixels.shape[:2]
    ratio = min(size / h, size / w)
    new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    if (new_w, new_h) != (w, h):
        interpolation = cv2.INTER_AREA if ratio < 0.5 else cv2.INTER_LINEAR
        pixels = cv2.resize(pixels, (new_w, new_h), interpolation=interpolation)
    pad_x = (size - new_w) // 2 if center else 0
    pad_y = (size - new_h) // 2 if center else 0
    return cv2.copyMakeBorder(
        pixels, pad_y, size - new_h - pad_y, pad_x, size - new_w - pad_x, cv2.BORDER_CONSTANT, value=(114, 114, 114)
    )


@pytest.mark.parametrize(
    ("shape", "center"),
    [
        ((48, 64, 3), True),  # no resize: copied as it is, padded top and bottom
        ((100, 37, 3), True),  # shrunk (bilinear), padded left and right, odd padding
        ((500, 333, 3), True),  # shrunk by more than half (area averaging)
        ((20, 30, 3), True),  # enlarged
        ((100, 37, 3), False),  # YOLOX: padded right and bottom only
        ((64, 64, 3), True),  # already the model's size
    ],
)
def test_letterbox_into_a_batch_row_equals_the_two_step_letterbox(shape: tuple[int, int, int], center: bool) -> None:
    # GIVEN a batch buffer whose rows hold stale pixels from an earlier batch
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    batch = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    before = batch.copy()
    # WHEN an image is letterboxed into row 1
    lb = letterbox_into(pixels, batch[1], center=center)
    # THEN the row is exactly the resized-then-padded canvas, every stale pixel overwritten
    np.testing.assert_array_equal(batch[1], _reference_letterbox(pixels, 64, center))
    assert np.shares_memory(lb.canvas, batch)
    # AND the other rows are untouched
    np.testing.assert_array_equal(batch[[0, 2]], before[[0, 2]])


def test_letterbox_into_refuses_a_canvas_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="square"):
        letterbox_into(np.zeros((10, 10, 3), np.uint8), np.zeros((64, 32, 3), np.uint8))


def test_model_knobs_come_from_settings_with_a_labels_file(tmp_path: Path) -> None:
    from shared.config import load_settings
    from shared.vision.detector import load_detector

    # GIVEN a YOLOX model configured through CONTENTFN_DETECTOR_* settings and a labels file
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\n")
    settings = load_settings(
        data_dir=tmp_path,
        detector_model_path=constant_model(tmp_path / "x.onnx", yolox_output()),
        detector_model_name="tiny-yolox",
        detector_labels_file=labels,
        detector_score_threshold=0.65,
    )
    # WHEN it is loaded
    detector = load_detector(settings)
    # THEN the names, threshold and YOLOX preprocessing defaults apply
    assert (detector.name, detector.layout, detector.labels) == ("tiny-yolox", "yolox", ("cat", "dog"))
    assert (detector.spec.channel_order, detector.spec.scale) == ("bgr", 1.0)
    (found,) = detector.detect([image(128, 128)])
    assert [(d.label, round(d.score, 2)) for d in found] == [("cat", 0.9), ("dog", 0.7)]


def test_io_binding_path_matches_plain_run(tmp_path: Path) -> None:
    # The CUDA path binds the uint8 batch and a preallocated output on the host (the provider copies
    # inside the run); on CPU the same calls must give the same answer, first run and later ones,
    # at every batch size, and each batch its own output buffer.
    detector = Detector(ModelSpec(path=constant_model(tmp_path / "v8.onnx", yolov8_output(), mix=1.0)))
    rng = np.random.default_rng(1)
    outputs = []
    for n in (3, 1, 4):
        pixels = rng.integers(0, 255, (n, SIZE, SIZE, 3), dtype=np.uint8)
        bound = detector._run_bound(pixels)
        np.testing.assert_array_equal(bound, detector.run_raw(pixels))
        outputs.append(bound)
    assert detector._output_tail is not None and detector._output_tail[0] == outputs[0].shape[1:]
    assert len({o.ctypes.data for o in outputs}) == 3
    assert len({float(o[0, 0, 0]) for o in outputs}) == 3  # the output follows the pixels bound


def test_on_a_gpu_each_overlapping_call_and_each_batch_shape_gets_a_session_of_its_own(tmp_path: Path) -> None:
    # On the CUDA provider two calls overlapping on one session gave wrong boxes, and a session whose
    # batch size changed between calls re-planned every convolution (841 ms a call on an H200). The
    # session pool is the same code on any provider: this CPU detector runs it as a GPU one would.
    detector = Detector(ModelSpec(path=constant_model(tmp_path / "v8.onnx", yolov8_output(), mix=1.0)))
    detector.on_gpu = True
    opened = []
    real_open = detector.pool.open_session
    detector.pool.open_session = lambda: opened.append(real_open()) or opened[-1]
    full, half = (4, SIZE, SIZE, 3), (2, SIZE, SIZE, 3)
    # WHEN two calls of one shape overlap, THEN they run on two sessions; after them, one of those is reused
    with detector._session_for_call(full) as a, detector._session_for_call(full) as b:
        assert a is not b
    with detector._session_for_call(full) as again:
        assert again in (a, b)
    # WHEN a call comes with another batch shape, THEN it gets a session that has seen no other shape
    with detector._session_for_call(half) as other:
        assert other not in (a, b)
    assert detector.sessions == 3 and len(opened) == 2  # the first session was opened at start
    # warm() opens what overlapping calls will need, per shape, before any is timed
    detector.warm((4,), per_size=3)
    assert detector.sessions == 4
    # and whichever session a call lands on, the answer is the one session's
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, full, dtype=np.uint8)
    plain = Detector(ModelSpec(path=constant_model(tmp_path / "v8b.onnx", yolov8_output(), mix=1.0)))
    expected = plain.run_raw(pixels)
    for _ in range(4):
        np.testing.assert_array_equal(detector.run_raw(pixels), expected)
    np.testing.assert_array_equal(detector.run_raw(pixels[:2]), expected[:2])


def test_on_cpu_calls_share_the_one_session(tmp_path: Path) -> None:
    detector = Detector(ModelSpec(path=constant_model(tmp_path / "v8.onnx", yolov8_output())))
    with detector._session_for_call((4, SIZE, SIZE, 3)) as a, detector._session_for_call((2, SIZE, SIZE, 3)) as b:
        assert a is b is detector.session
    detector.warm((1, 4), per_size=2)
    assert detector.sessions == 1


def test_output_buffer_is_written_in_place_and_matches_a_fresh_output(tmp_path: Path) -> None:
    # The worker's inference thread runs every batch into one reused output buffer (page-locked on a
    # GPU): both the bound path and the plain one must fill that buffer, and only its first rows.
    detector = Detector(ModelSpec(path=constant_model(tmp_path / "v8.onnx", yolov8_output(), mix=1.0)))
    out = detector.output_buffer(4)
    assert out.shape[0] == 4 and detector._output_tail is not None
    rng = np.random.default_rng(2)
    for run in (detector._run_bound, detector.run_raw):
        out[:] = -1
        pixels = rng.integers(0, 255, (3, SIZE, SIZE, 3), dtype=np.uint8)
        result = run(pixels, out)
        assert result.ctypes.data == out.ctypes.data and len(result) == 3
        np.testing.assert_array_equal(result, detector.run_raw(pixels))
        assert (out[3] == -1).all()


def test_host_buffers_are_plain_arrays_off_the_gpu(tmp_path: Path) -> None:
    detector = Detector(ModelSpec(path=constant_model(tmp_path / "v8.onnx", yolov8_output(), mix=1.0)))
    buffer = detector.host_buffer((2, SIZE, SIZE, 3))
    assert not detector.pinned and buffer.dtype == np.uint8 and not buffer.any()
    detector.release_buffer(buffer)  # nothing was pinned: a no-op


def _random_output(layout: str, rng: np.random.Generator, num_classes: int = 80) -> np.ndarray:
    """A dense, realistic-looking raw output: boxes anywhere, mostly low scores, a few confident."""
    n = 300
    boxes = np.stack(
        [rng.uniform(0, SIZE, n), rng.uniform(0, SIZE, n), rng.uniform(2, SIZE / 3, n), rng.uniform(2, SIZE / 3, n)], 1
    )
    scores = rng.uniform(0, 0.3, (n, num_classes))
    hot = rng.choice(n, 25, replace=False)
    scores[hot, rng.integers(0, num_classes, 25)] = rng.uniform(0.4, 0.99, 25)
    if layout == "yolov8":
        return np.concatenate([boxes, scores], 1).T[None].astype(np.float32)
    if layout == "yolox":
        n = len(yolox_grid(SIZE)[0])
        boxes = np.concatenate([rng.uniform(-0.5, 0.5, (n, 2)), rng.uniform(-1, 1.5, (n, 2))], 1)
        scores = rng.uniform(0, 0.3, (n, num_classes))
        hot = rng.choice(n, 25, replace=False)
        scores[hot, rng.integers(0, num_classes, 25)] = rng.uniform(0.4, 0.99, 25)
    objectness = rng.uniform(0.5, 1.0, (len(boxes), 1))
    return np.concatenate([boxes, objectness, scores], 1)[None].astype(np.float32)


@pytest.mark.parametrize("layout", ["yolov8", "yolov5", "yolox"])
def test_scores_reduced_inside_the_model_give_the_same_detections(tmp_path: Path, layout: str) -> None:
    # GIVEN an 80-class model of each layout with a dense output of mostly weak candidates
    path = constant_model(tmp_path / f"{layout}.onnx", _random_output(layout, np.random.default_rng(7)))
    spec = ModelSpec(path=path, layout=layout, input_size=SIZE, score_threshold=0.35)  # type: ignore[arg-type]
    reduced = Detector(spec)
    full = Detector(spec, reduce_scores=False)
    pixels = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    # THEN the reduced model returns 6 numbers per candidate instead of 4 + 80 (or 5 + 80)
    assert reduced.reduced and not full.reduced
    assert 6 in reduced.run_raw(pixels).shape and 6 not in full.run_raw(pixels).shape
    # AND the detections are the same, class, score and box
    images = [image(80, 48), image(48, 80)]
    got, want = reduced.detect(images), full.detect(images)
    assert sum(len(d) for d in want) >= 5
    for a, b in zip(got, want, strict=True):
        assert [(d.class_id, round(d.score, 5), tuple(round(v, 3) for v in d.box)) for d in a] == [
            (d.class_id, round(d.score, 5), tuple(round(v, 3) for v in d.box)) for d in b
        ]


def test_options_for_a_provider_that_is_absent_leave_the_cpu_session_as_it_is(tmp_path: Path) -> None:
    det = Detector(
        ModelSpec(path=constant_model(tmp_path / "m.onnx", yolov8_output())),
        provider_options={"CUDAExecutionProvider": {"prefer_nhwc": "1"}},
    )
    assert det.provider == "CPUExecutionProvider"
    assert len(det.detect([image(128, 128)])[0]) == len(EXPECTED)


def test_provider_options_for_an_unknown_provider_are_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.config import load_settings
    from shared.errors import ConfigError

    monkeypatch.setenv("CONTENTFN_DETECTOR_PROVIDER_OPTIONS", '{"CudaProvider": {"prefer_nhwc": "1"}}')
    with pytest.raises(ConfigError, match=r"CONTENTFN_DETECTOR_PROVIDER_OPTIONS.*CudaProvider"):
        load_settings()


def test_precision_comes_from_settings_and_an_unknown_one_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.config import load_settings
    from shared.errors import ConfigError
    from shared.vision.detector import spec_from_settings

    model = constant_model(tmp_path / "m.onnx", yolov8_output())
    settings = load_settings(data_dir=tmp_path, detector_model_path=model, detector_precision="fp16")
    assert spec_from_settings(settings).precision == "fp16"
    monkeypatch.setenv("CONTENTFN_DETECTOR_PRECISION", "fp8")
    with pytest.raises(ConfigError, match="CONTENTFN_DETECTOR_PRECISION"):
        load_settings()
