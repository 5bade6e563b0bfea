"""The detector: one ONNX Runtime session per model, provider picked at start, YOLO-family outputs.

On any provider the session takes **uint8 NHWC** pixels: a small prefix graph (cast, channel order,
scale, transpose) is spliced in front of the model, so normalisation runs where the model runs. On a
GPU that cuts the host-to-device copy four-fold against float32 input, and with IO binding the batch
goes to the device once, as one buffer.

The parts around it are modules of their own: ``providers`` (which execution providers, with which
options), ``graph`` (the prefix and suffix graphs, half precision) and ``sessions`` (the sessions
of a GPU, by call and input shape).
"""

from __future__ import annotations

import ast
import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shared.errors import ModelNotReady
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
from shared.vision.graph import half_precision, with_uint8_input
from shared.vision.pinned import pin, unpin
from shared.vision.providers import GPU_PROVIDERS, choose_providers, session_options
from shared.vision.sessions import SessionPool

__all__ = [
    "Detection",
    "Detector",
    "ModelSpec",
    "Prepared",
    "default_model_path",
    "load_detector",
    "spec_from_settings",
]

log = logging.getLogger(__name__)


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
    """The YOLOv8n-architecture detector shipped in the ``nudenet`` wheel, found without importing it.

    Installed by the ``demo`` extra for the tests and the local demo only: the wheel carries an AGPL-3.0
    licence, so no image installs it (the GPU image is given the user's model)."""
    import importlib.util

    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "320n.onnx"
    return path if path.is_file() else None


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
        model_bytes = self._rewritten(raw, reduce_scores=reduce_scores)
        chosen = choose_providers(providers, cache_dir=cache_dir, options=provider_options)

        def open_session() -> Any:
            return ort.InferenceSession(model_bytes, session_options(ort, chosen, threads), providers=chosen)

        self.session = open_session()
        self.provider = self.session.get_providers()[0]
        self.on_gpu = self.provider in GPU_PROVIDERS
        # On a GPU each call runs on a session of its own input shape, none shared by calls at once
        # (see shared.vision.sessions); on CPU every call runs on ``session``.
        self.pool = SessionPool(self.session, open_session, name=self.name)
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
    def _rewritten(self, raw: bytes, *, reduce_scores: bool) -> bytes:
        """The model as its sessions run it: in half precision if asked, with the uint8 prefix and
        the score reduction when the onnx package is there (``host_normalise`` when it is not)."""
        if self.spec.precision == "fp16":
            raw = half_precision(raw)
        wrapped = with_uint8_input(
            raw,
            self.input_size,
            channel_order=self.spec.channel_order,
            scale=self.spec.scale,
            layout=self.layout if reduce_scores else None,
        )
        self.host_normalise = wrapped is None
        # The wrapped model also reduces the class scores on the device: (box, best score, class)
        # per candidate instead of 4 + C numbers (5 + C for YOLOv5 / YOLOX) to copy back and scan.
        self.reduced = wrapped is not None and wrapped[1]
        return raw if wrapped is None else wrapped[0]

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

    @property
    def sessions(self) -> int:
        """How many sessions this detector has opened (one on CPU)."""
        return self.pool.opened

    @contextlib.contextmanager
    def _session_for_call(self, shape: tuple[int, ...]) -> Iterator[Any]:
        """On a GPU a session of the pool (see ``shared.vision.sessions``); on CPU the one session,
        whose calls may overlap and change shape freely (a session per call there would only split
        the cores further)."""
        if not self.on_gpu:
            yield self.session
            return
        with self.pool.session_for(shape) as session:
            yield session

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


def _static_batch(session: Any) -> int | None:
    dim = session.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) else None


def spec_from_settings(settings: Any) -> ModelSpec:
    """The model named by ``CONTENTFN_DETECTOR_*`` (default: the detector in the ``nudenet`` wheel)."""
    path = settings.detector_model_path or default_model_path()
    if path is None:
        raise ModelNotReady(
            "no detector model: set CONTENTFN_DETECTOR_MODEL_PATH (or, for the local demo, install the demo extra)"
        )
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
