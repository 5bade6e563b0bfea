"""The detector: one ONNX Runtime session per model, provider picked at start, YOLO-family outputs.

On any provider the session takes **uint8 NHWC** pixels: a small prefix graph (cast, channel order,
scale, transpose) is spliced in front of the model, so normalisation runs where the model runs. On a
GPU that cuts the host-to-device copy four-fold against float32 input, and with IO binding the batch
goes to the device once, as one buffer.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shared.errors import ConfigError, ModelNotReady
from shared.vision.boxes import (
    Layout,
    Letterboxed,
    decode_layout,
    guess_layout,
    letterbox,
    letterbox_into,
    nms,
)
from shared.vision.decode import DecodedImage
from shared.vision.detection import Detection
from shared.vision.pinned import pin, unpin

__all__ = [
    "Detection",
    "Detector",
    "ModelSpec",
    "Prepared",
    "choose_providers",
    "default_model_path",
    "load_detector",
    "spec_from_settings",
]

log = logging.getLogger(__name__)

_PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
_U8_INPUT = "contentfn_pixels_u8"


@dataclass(frozen=True)
class ModelSpec:
    """What the detector must know about a model; ``None`` fields are read from the model or defaulted."""

    path: Path
    name: str | None = None
    layout: Layout | Literal["auto"] = "auto"
    input_size: int | None = None
    channel_order: Literal["rgb", "bgr"] | None = None  # default: rgb, bgr for YOLOX
    scale: float | None = None  # default: 1/255, 1.0 for YOLOX
    labels: tuple[str, ...] | None = None
    score_threshold: float = 0.35
    iou_threshold: float = 0.45
    max_detections: int = 100
    # fp16: the weights and the arithmetic in half precision (tensor cores on a GPU), the model's
    # input and output staying float32, so everything around the session is unchanged.
    precision: Literal["fp32", "fp16"] = "fp32"


@dataclass(frozen=True)
class Prepared:
    """One image letterboxed for the model, with what is needed to map boxes back."""

    lb: Letterboxed
    width: int  # original image size
    height: int
    scale_back: tuple[float, float] = field(default=(1.0, 1.0))  # original / decoded pixels


def default_model_path() -> Path | None:
    """The YOLOv8n-architecture detector shipped in the ``nudenet`` wheel, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "320n.onnx"
    return path if path.is_file() else None


def choose_providers(
    requested: Sequence[str] = (),
    *,
    cache_dir: Path | None = None,
    options: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Any]:
    """TensorRT, then CUDA, then CPU: whichever this onnxruntime build offers (or the requested subset).

    onnxruntime itself falls back to the next provider when one is listed but cannot start (a
    TensorRT provider without its libraries); the provider actually used is read from the session.
    ``options`` (``CONTENTFN_DETECTOR_PROVIDER_OPTIONS``) are laid over contentfn's own, per provider;
    onnxruntime refuses a key it does not know when the session starts.
    """
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    wanted = list(requested) or list(_PROVIDER_ORDER)
    chosen = [p for p in wanted if p in available]
    if "TensorrtExecutionProvider" in chosen and not _tensorrt_loads():
        # onnxruntime-gpu lists its TensorRT provider whether or not TensorRT is installed. Without
        # it the session's start fails over to a CUDA provider stripped of every option given here
        # (the arena setting, CONTENTFN_DETECTOR_PROVIDER_OPTIONS): so not listed at all.
        if requested:
            raise ConfigError(
                "CONTENTFN_DETECTOR_PROVIDERS asks for TensorrtExecutionProvider, but TensorRT's runtime "
                "library (libnvinfer) cannot be loaded here"
            )
        chosen.remove("TensorrtExecutionProvider")
        log.info("TensorRT is not installed: the detector runs on the next provider available")
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    own: dict[str, dict[str, Any]] = {
        # Grow the memory arena by what is asked, not to the next power of two: several pipeline
        # processes share one GPU, and at batch 128 / 640x640 a doubling overshoots by gigabytes.
        "CUDAExecutionProvider": {"arena_extend_strategy": "kSameAsRequested"},
    }
    if cache_dir is not None:
        # TensorRT builds an engine per input shape; keep them across restarts.
        own["TensorrtExecutionProvider"] = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)}
    out: list[Any] = []
    for name in chosen:
        merged = {**own.get(name, {}), **dict((options or {}).get(name, {}))}
        if name == "TensorrtExecutionProvider" and cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
        out.append((name, merged) if merged else name)
    return out


def _tensorrt_loads() -> bool:
    """Whether TensorRT's runtime library loads in this process (the TensorRT provider needs it)."""
    for name in ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


class Detector:
    """Thread-safe: ``prepare`` is pure (run it on decode threads); ``infer`` runs the session."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        providers: Sequence[str] = (),
        threads: int = 0,
        cache_dir: Path | None = None,
        provider_options: Mapping[str, Mapping[str, str]] | None = None,
        reduce_scores: bool = True,
        pinned: bool = True,
    ) -> None:
        import onnxruntime as ort

        if not spec.path.is_file():
            raise ModelNotReady(f"detector model not found: {spec.path.name}")
        raw = spec.path.read_bytes()
        self._lock = threading.Lock()
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        probe = ort.InferenceSession(raw, opts, providers=["CPUExecutionProvider"])
        self.spec = self._complete_spec(spec, probe)
        self.input_size: int = self.spec.input_size or 640
        self.layout: Layout = self._layout(probe)
        self.labels = self.spec.labels or ()
        self.name = self.spec.name or spec.path.stem
        self.static_batch = _static_batch(probe)
        del probe
        if self.spec.precision == "fp16":
            raw = _half_precision(raw)
        prepared = _u8_wrapped(raw, self.spec, self.input_size, self.layout if reduce_scores else None)
        self.host_normalise = prepared is None
        wrapped = None if prepared is None else prepared[0]
        # The wrapped model also reduces the class scores on the device: (box, best score, class)
        # per candidate instead of 4 + C numbers (5 + C for YOLOv5 / YOLOX) to copy back and scan.
        self.reduced = prepared is not None and prepared[1]
        chosen = choose_providers(providers, cache_dir=cache_dir, options=provider_options)
        self._model_bytes = wrapped or raw
        self._open = lambda: ort.InferenceSession(
            self._model_bytes, _session_options(ort, chosen, threads), providers=chosen
        )
        self.session = self._open()
        self.provider = self.session.get_providers()[0]
        self.on_gpu = self.provider in _GPU_PROVIDERS
        # On a GPU (onnxruntime 1.31, CUDA provider, measured on an H200) one session must see one
        # call at a time and one input shape: two calls that overlapped on a session returned wrong
        # boxes (off by over 100 px), and a session whose batch size changed from one call to the next
        # planned its convolutions again every time (batches of 128 and 64 in turn: 841 ms a call,
        # against 38 and 20 ms each alone). So each call takes an idle session of its input's shape,
        # and one is opened when none is idle; sessions are kept for the next call.
        self._spare: list[Any] = [self.session]  # opened, not yet tied to a shape
        self._idle: dict[tuple[int, ...], list[Any]] = {}
        self.sessions = 1
        self.pinned = pinned and self.on_gpu
        self._pinned: list[np.ndarray] = []
        self._input = self.session.get_inputs()[0].name
        self._output = self.session.get_outputs()[0].name
        self._output_tail: tuple[tuple[int, ...], np.dtype[Any]] | None = None
        log.info(
            "detector %s: layout %s, input %d, %s, provider %s%s",
            self.name,
            self.layout,
            self.input_size,
            self.spec.precision,
            self.provider,
            " (host normalisation)" if self.host_normalise else " (uint8 input)",
        )

    # -- set-up ------------------------------------------------------------------------------
    @staticmethod
    def _complete_spec(spec: ModelSpec, probe: Any) -> ModelSpec:
        meta = probe.get_modelmeta().custom_metadata_map or {}
        size = spec.input_size
        if size is None:
            dims = probe.get_inputs()[0].shape
            if isinstance(dims[2], int) and isinstance(dims[3], int):
                size = int(dims[2])
            elif "imgsz" in meta:
                size = int(ast.literal_eval(meta["imgsz"])[0])
        labels = spec.labels
        if labels is None and "names" in meta:
            names = ast.literal_eval(meta["names"])  # ultralytics: "{0: 'person', ...}"
            if isinstance(names, dict):
                labels = tuple(str(names[k]) for k in sorted(names))
        return replace(spec, input_size=size, labels=labels)

    def _layout(self, probe: Any) -> Layout:
        layout = self.spec.layout
        if layout == "auto":
            feed = np.zeros((1, 3, self.input_size, self.input_size), dtype=np.float32)
            out = probe.run(None, {probe.get_inputs()[0].name: feed})[0]
            layout = guess_layout(tuple(out.shape), self.input_size)
        yolox = layout == "yolox"
        self.spec = replace(
            self.spec,
            channel_order=self.spec.channel_order or ("bgr" if yolox else "rgb"),
            scale=self.spec.scale if self.spec.scale is not None else (1.0 if yolox else 1 / 255),
        )
        return layout

    def host_buffer(self, shape: tuple[int, ...], dtype: Any = np.uint8) -> np.ndarray:
        """A zeroed host array for batches: page-locked on a GPU (see ``shared.vision.pinned``), so
        its copy to the device is a DMA transfer; a plain array elsewhere or where pinning fails."""
        buffer = np.zeros(shape, dtype)
        if self.pinned and pin(buffer):
            self._pinned.append(buffer)
        return buffer

    def release_buffer(self, buffer: np.ndarray) -> None:
        """Unregister a buffer from ``host_buffer`` (the array stays usable, pageable)."""
        for k, b in enumerate(self._pinned):
            if b is buffer:
                unpin(self._pinned.pop(k))
                return

    # -- running -----------------------------------------------------------------------------
    def prepare(self, image: DecodedImage, into: np.ndarray | None = None) -> Prepared:
        """Letterbox ``image`` for the model: into ``into`` (one row of a batch buffer) when given,
        else into a canvas of its own."""
        center = self.layout != "yolox"
        if into is None:
            lb = letterbox(image.pixels, self.input_size, center=center)
        else:
            lb = letterbox_into(image.pixels, into, center=center)
        h, w = image.pixels.shape[:2]
        return Prepared(lb=lb, width=image.width, height=image.height, scale_back=(image.width / w, image.height / h))

    def detect(self, images: Sequence[DecodedImage]) -> list[list[Detection]]:
        return self.infer([self.prepare(i) for i in images])

    def infer(self, batch: Sequence[Prepared]) -> list[list[Detection]]:
        """Run one batch (any size up to a static batch dimension) and post-process it."""
        if not batch:
            return []
        return self.postprocess(self.run_raw(np.stack([p.lb.canvas for p in batch])), batch)

    def postprocess(self, output: np.ndarray, batch: Sequence[Prepared]) -> list[list[Detection]]:
        """Threshold, NMS and map back; separate from ``run_raw`` so a pipeline can overlap them."""
        cands = decode_layout(output, self.layout, self.input_size, self.spec.score_threshold, reduced=self.reduced)
        return [self._finish(c, p) for c, p in zip(cands, batch, strict=True)]

    def run_raw(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Model output for a uint8 NHWC batch; into ``out`` (from ``output_buffer``) when given,
        which on a GPU saves a fresh host array, and its page faults, per batch."""
        if self.host_normalise:
            feed = pixels[..., ::-1] if self.spec.channel_order == "bgr" else pixels
            x = np.ascontiguousarray(feed.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(self.spec.scale)
            with self._session_for_call(x.shape) as session:
                return self._into(np.asarray(session.run([self._output], {self._input: x})[0]), out)
        if self.on_gpu:
            return self._run_bound(pixels, out)
        return self._into(np.asarray(self.session.run([self._output], {self._input: pixels})[0]), out)

    @staticmethod
    def _into(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        if out is None:
            return result
        view = out[: len(result)]
        view[...] = result
        return view

    def output_tail(self) -> tuple[tuple[int, ...], np.dtype[Any]]:
        """The raw output's shape per image and its type (learned from one run of this session)."""
        if self._output_tail is None:
            first = Detector.run_raw(self, np.zeros((1, self.input_size, self.input_size, 3), np.uint8))
            self._output_tail = (tuple(first.shape[1:]), first.dtype)
        return self._output_tail

    def output_buffer(self, rows: int) -> np.ndarray:
        """A host array for up to ``rows`` images' raw output (page-locked on a GPU), for ``run_raw(out=)``."""
        tail, dtype = self.output_tail()
        return self.host_buffer((rows, *tail), dtype)

    def warm(self, sizes: Sequence[int], per_size: int = 1) -> None:
        """Open ``per_size`` sessions for each batch size and run each once (a shape's first run picks
        its kernels and is slow), so that calls that overlap pay for neither mid-run. On a GPU only."""
        if not self.on_gpu or not sizes:
            return
        pixels = self.host_buffer((max(sizes), self.input_size, self.input_size, 3))
        try:
            for rows in sizes:
                shape = (rows, *pixels.shape[1:])
                with contextlib.ExitStack() as held:  # held together: ``per_size`` distinct sessions
                    for _ in range(per_size):
                        self._run_bound_on(held.enter_context(self._session_for_call(shape)), pixels[:rows], None)
        finally:
            self.release_buffer(pixels)

    @contextlib.contextmanager
    def _session_for_call(self, shape: tuple[int, ...]) -> Iterator[Any]:
        """A session that no other call is running on and that has only seen ``shape`` (see
        ``__init__``); on CPU the one session, whose calls may overlap and change shape freely (a
        session per call there would only split the cores further)."""
        if not self.on_gpu:
            yield self.session
            return
        with self._lock:
            idle = self._idle.setdefault(tuple(shape), [])
            session = idle.pop() if idle else self._spare.pop() if self._spare else None
            if session is None:
                self.sessions += 1
        if session is None:
            session = self._open()
            log.info("detector %s: %d sessions (one per call at once, per batch shape)", self.name, self.sessions)
        try:
            yield session
        finally:
            with self._lock:
                idle.append(session)

    def _run_bound(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """IO binding over host buffers: the uint8 batch and the output buffer stay where they are,
        and the provider copies them to and from the device inside ``run_with_iobinding``, which
        releases the GIL. (An OrtValue made on the device, or ``copy_outputs_to_cpu``, would copy
        while holding it, and other pipeline threads would wait on every batch's transfers.)"""
        with self._session_for_call(pixels.shape) as session:
            return self._run_bound_on(session, pixels, out)

    def _run_bound_on(self, session: Any, pixels: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        batch = np.ascontiguousarray(pixels)
        binding = session.io_binding()
        binding.bind_input(self._input, "cpu", 0, batch.dtype, list(batch.shape), batch.ctypes.data)
        known = self._output_tail
        if known is None:  # the first run learns the output's shape per image and its type
            binding.bind_output(self._output, "cpu")
            session.run_with_iobinding(binding)
            first = np.asarray(binding.copy_outputs_to_cpu()[0])
            self._output_tail = (tuple(first.shape[1:]), first.dtype)
            return self._into(first, out)
        tail, dtype = known
        # Without a buffer given, a fresh one per batch: the caller may still be reading the last.
        target = np.empty((len(batch), *tail), dtype) if out is None else out[: len(batch)]
        binding.bind_output(self._output, "cpu", 0, dtype, list(target.shape), target.ctypes.data)
        session.run_with_iobinding(binding)
        return target

    def _finish(self, cand: Any, prep: Prepared) -> list[Detection]:
        keep = nms(cand.boxes, cand.scores, cand.classes, self.spec.iou_threshold, self.spec.max_detections)
        if len(keep) == 0:
            return []
        boxes = cand.boxes[keep].copy()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - prep.lb.pad_x) / prep.lb.ratio * prep.scale_back[0]
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - prep.lb.pad_y) / prep.lb.ratio * prep.scale_back[1]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, prep.width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, prep.height)
        out = []
        for row, idx in zip(boxes, keep, strict=True):
            cid = int(cand.classes[idx])
            label = self.labels[cid] if cid < len(self.labels) else f"class_{cid}"
            box = (float(row[0]), float(row[1]), float(row[2]), float(row[3]))
            out.append(Detection(class_id=cid, label=label, score=float(cand.scores[idx]), box=box))
        return out


def _session_options(ort: Any, chosen: Sequence[Any], threads: int) -> Any:
    """Session options for the chosen providers. On a GPU the CPU thread pool has nothing to run but
    the odd shape op, and its threads spin while they wait (a core each, per session): one thread,
    no spinning, leaves the cores to decoding."""
    opts = ort.SessionOptions()
    on_gpu = any((p[0] if isinstance(p, tuple) else p) in _GPU_PROVIDERS for p in chosen)
    if on_gpu:
        opts.intra_op_num_threads = threads or 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    elif threads:
        opts.intra_op_num_threads = threads
    return opts


def batch_sizes(max_batch: int) -> tuple[int, ...]:
    """The batch sizes run on a GPU: ``max_batch`` alone, a partial batch padded up to it. A session
    sees one input shape (see ``Detector``), and each shape is a session of its own to open, warm up
    and hold device memory for, so one shape. The padding costs a partial batch the time of a full one,
    and partial batches are what a worker runs when it has time to spare: on an H200 a batch of 128 at
    640x640 took 38 ms, the pipeline drained 3,435 img/s with every call at 128."""
    return (max_batch,)


def padded_size(sizes: Sequence[int], rows: int) -> int:
    """The smallest of ``sizes`` that holds ``rows`` (``rows`` itself when none does or none is given)."""
    return next((b for b in sizes if b >= rows), rows)


def _static_batch(session: Any) -> int | None:
    dim = session.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) else None


def _half_precision(raw: bytes) -> bytes:
    """The model with float16 weights and arithmetic; its inputs and outputs stay float32 (casts at
    the edges), so the uint8 prefix and the score reduction attach as they do to the original."""
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise ConfigError(f"CONTENTFN_DETECTOR_PRECISION=fp16 needs the onnx package: {exc}") from None
    model = convert_float_to_float16(onnx.load_from_string(raw), keep_io_types=True)
    return bytes(model.SerializeToString())


def _u8_wrapped(raw: bytes, spec: ModelSpec, size: int, layout: Layout | None = None) -> tuple[bytes, bool] | None:
    """The model with a uint8 NHWC input in front and, given its layout, the class scores reduced
    behind it (:func:`_reduce_scores`): (model bytes, whether reduced). None without the onnx package."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    model = onnx.load_from_string(raw)
    graph = model.graph
    initialised = {i.name for i in graph.initializer}
    original = next(i for i in graph.input if i.name not in initialised)
    batch_dim = original.type.tensor_type.shape.dim[0]
    batch: int | str = batch_dim.dim_value if batch_dim.HasField("dim_value") else (batch_dim.dim_param or "batch")
    new_input = helper.make_tensor_value_info(_U8_INPUT, TensorProto.UINT8, [batch, size, size, 3])
    nodes = [helper.make_node("Cast", [_U8_INPUT], ["contentfn_pre_f"], to=TensorProto.FLOAT)]
    current = "contentfn_pre_f"
    if spec.channel_order == "bgr":
        graph.initializer.append(numpy_helper.from_array(np.array([2, 1, 0], dtype=np.int64), "contentfn_pre_bgr"))
        nodes.append(helper.make_node("Gather", [current, "contentfn_pre_bgr"], ["contentfn_pre_c"], axis=3))
        current = "contentfn_pre_c"
    if spec.scale not in (None, 1.0):
        graph.initializer.append(numpy_helper.from_array(np.array(spec.scale, dtype=np.float32), "contentfn_pre_k"))
        nodes.append(helper.make_node("Mul", [current, "contentfn_pre_k"], ["contentfn_pre_s"]))
        current = "contentfn_pre_s"
    nodes.append(helper.make_node("Transpose", [current], [original.name], perm=[0, 3, 1, 2]))
    graph.input.remove(original)
    graph.input.insert(0, new_input)
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    reduced = layout is not None and _reduce_scores(model, layout)
    return bytes(model.SerializeToString()), reduced


def _reduce_scores(model: Any, layout: Layout) -> bool:
    """Append, behind the model's first output, the per-candidate best class score and its class.

    YOLOv8 ``[B, 4+C, N]`` becomes ``[B, 6, N]``: cx, cy, w, h, best score, class. YOLOv5 and YOLOX
    ``[B, N, 5+C]`` become ``[B, N, 6]``: the four box numbers, objectness x best class score, class.
    For an 80-class model that is 15x fewer bytes to copy from the device and to scan on the host.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    out = graph.output[0]
    name = out.name
    if len(out.type.tensor_type.shape.dim) != 3:
        return False  # not a detector output this knows; left as it is
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    axis = 1 if layout == "yolov8" else 2

    def const(key: str, values: list[int]) -> str:
        graph.initializer.append(numpy_helper.from_array(np.array(values, dtype=np.int64), f"contentfn_post_{key}"))
        return f"contentfn_post_{key}"

    big = 2**62
    ax = const("axis", [axis])
    nodes = [
        helper.make_node("Slice", [name, const("s0", [0]), const("e4", [4]), ax], ["contentfn_post_box"]),
    ]
    first_class = 4 if layout == "yolov8" else 5
    nodes.append(
        helper.make_node("Slice", [name, const("sc", [first_class]), const("end", [big]), ax], ["contentfn_post_cls"])
    )
    if opset >= 18:
        nodes.append(helper.make_node("ReduceMax", ["contentfn_post_cls", ax], ["contentfn_post_max"], keepdims=1))
    else:
        nodes.append(
            helper.make_node("ReduceMax", ["contentfn_post_cls"], ["contentfn_post_max"], axes=[axis], keepdims=1)
        )
    nodes += [
        helper.make_node("ArgMax", ["contentfn_post_cls"], ["contentfn_post_arg"], axis=axis, keepdims=1),
        helper.make_node("Cast", ["contentfn_post_arg"], ["contentfn_post_argf"], to=TensorProto.FLOAT),
    ]
    score = "contentfn_post_max"
    if layout != "yolov8":
        nodes += [
            helper.make_node("Slice", [name, const("s4", [4]), const("e5", [5]), ax], ["contentfn_post_obj"]),
            helper.make_node("Mul", ["contentfn_post_obj", "contentfn_post_max"], ["contentfn_post_score"]),
        ]
        score = "contentfn_post_score"
    reduced = f"{name}_contentfn_reduced"
    nodes.append(helper.make_node("Concat", ["contentfn_post_box", score, "contentfn_post_argf"], [reduced], axis=axis))
    graph.node.extend(nodes)
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in out.type.tensor_type.shape.dim]
    dims[axis] = 6
    graph.output.remove(out)
    graph.output.insert(0, helper.make_tensor_value_info(reduced, TensorProto.FLOAT, dims))
    return True


def spec_from_settings(settings: Any) -> ModelSpec:
    """The model named by ``CONTENTFN_DETECTOR_*`` (default: the detector in the ``nudenet`` wheel)."""
    path = settings.detector_model_path or default_model_path()
    if path is None:
        raise ModelNotReady("no detector model: set CONTENTFN_DETECTOR_MODEL_PATH or install the nudenet wheel")
    labels = None
    if settings.detector_labels_file is not None:
        lines = settings.detector_labels_file.read_text(encoding="utf-8").splitlines()
        labels = tuple(line.strip() for line in lines if line.strip())
    return ModelSpec(
        path=Path(path),
        name=settings.detector_model_name,
        layout=settings.detector_layout,
        input_size=settings.detector_input_size,
        channel_order=settings.detector_channel_order,
        scale=settings.detector_scale,
        labels=labels,
        score_threshold=settings.detector_score_threshold,
        iou_threshold=settings.detector_iou_threshold,
        max_detections=settings.detector_max_detections,
        precision=settings.detector_precision,
    )


def load_detector(settings: Any) -> Detector:
    return Detector(
        spec_from_settings(settings),
        providers=settings.detector_providers,
        threads=settings.detector_threads,
        cache_dir=settings.data_dir / "trt-cache",
        provider_options=settings.detector_provider_options,
        pinned=settings.gpu_pinned_buffers,
    )
