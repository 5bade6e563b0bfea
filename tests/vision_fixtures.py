"""Helpers for the vision tests: distinct photos as JPEG bytes, a tiny detector model, uploads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from functions.ingest.core import handle_object_created
from functions.ingest.reports import ImageReport, IngestReport
from shared.events import ObjectCreated
from shared.services import Services

TINY_SIZE = 64
TINY_BOXES_PER_IMAGE = 2


def tiny_model(path: Path, *, size: int = TINY_SIZE, work: int = 0) -> Path:
    """A YOLOv8-layout model that finds the same two boxes (two classes) in every image.

    ``work`` adds that many 256x256 matrix products per image, to make inference take time.
    """
    out = np.zeros((1, 6, 8), dtype=np.float32)
    out[0, :, 0] = (size / 2, size / 2, size / 4, size / 4, 0.9, 0.0)
    out[0, :, 1] = (size / 4, size / 4, size / 8, size / 8, 0.0, 0.8)
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 6, 8])
    nodes = [helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=1)]
    inits = [
        numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), "shape3"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(out, "const"),
    ]
    last = "m"
    if work:
        inits.append(numpy_helper.from_array(np.eye(256, dtype=np.float32), "eye"))
        nodes.append(helper.make_node("Slice", ["images", "s0", "s1", "s2"], ["crop"]))
        inits += [
            numpy_helper.from_array(np.array([0, 0], dtype=np.int64), "s0"),
            numpy_helper.from_array(np.array([256, 256], dtype=np.int64), "s1"),
            numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "s2"),
        ]
        cur = "crop"
        for i in range(work):
            nodes.append(helper.make_node("MatMul", [cur, "eye"], [f"w{i}"]))
            cur = f"w{i}"
        nodes.append(helper.make_node("ReduceMean", [cur], ["wm"], axes=[1, 2, 3], keepdims=1))
        nodes.append(helper.make_node("Add", ["m", "wm"], ["mw"]))
        last = "mw"
    nodes += [
        helper.make_node("Reshape", [last, "shape3"], ["m3"]),
        helper.make_node("Mul", ["m3", "zero"], ["z"]),
        helper.make_node("Add", ["z", "const"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def distinct_jpegs(n: int, width: int = 320, height: int = 240, seed: int = 0) -> Iterator[bytes]:
    """``n`` different JPEGs (smooth gradients with a random patch: small files, distinct hashes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 255 // (width + height)], axis=-1)
    for _ in range(n):
        img = base.astype(np.uint8).copy()
        y, x = rng.integers(0, height - 16), rng.integers(0, width - 16)
        img[y : y + 16, x : x + 16] = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=85)
        yield buf.getvalue()


def upload(services: Services, key: str, data: bytes) -> IngestReport:
    """Put the object into the local bucket and deliver its ObjectCreated to ingest; returns its report."""
    info = services.blob.put(services.settings.bucket, key, data)
    event = ObjectCreated(bucket=info.bucket, key=info.key, size=info.size, generation=info.generation)
    return handle_object_created(event, services).result


def image_id_of(report: IngestReport) -> int:
    """The image row an upload under images/ recorded (failing the test if it recorded none)."""
    assert isinstance(report, ImageReport), report
    return report.image_id


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample named ``name`` in a Prometheus exposition, parsed by the client."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
