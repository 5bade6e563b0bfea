"""Rewriting the detector's ONNX graph before its session opens.

A uint8 NHWC prefix (cast, channel order, scale, transpose) so normalisation runs where the model
runs; a suffix that reduces the class scores to the best one per candidate; half precision. Each
needs the ``onnx`` package; without it the model runs as it is.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from shared.errors import ConfigError
from shared.vision.boxes import Layout

__all__ = ["half_precision", "with_uint8_input"]

_U8_INPUT = "contentfn_pixels_u8"


def half_precision(raw: bytes) -> bytes:
    """The model with float16 weights and arithmetic; its inputs and outputs stay float32 (casts at
    the edges), so the uint8 prefix and the score reduction attach as they do to the original."""
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise ConfigError(f"CONTENTFN_DETECTOR_PRECISION=fp16 needs the onnx package: {exc}") from None
    model = convert_float_to_float16(onnx.load_from_string(raw), keep_io_types=True)
    return bytes(model.SerializeToString())


def with_uint8_input(
    raw: bytes,
    size: int,
    *,
    channel_order: Literal["rgb", "bgr"] | None,
    scale: float | None,
    layout: Layout | None = None,
) -> tuple[bytes, bool] | None:
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
    if channel_order == "bgr":
        graph.initializer.append(numpy_helper.from_array(np.array([2, 1, 0], dtype=np.int64), "contentfn_pre_bgr"))
        nodes.append(helper.make_node("Gather", [current, "contentfn_pre_bgr"], ["contentfn_pre_c"], axis=3))
        current = "contentfn_pre_c"
    if scale not in (None, 1.0):
        graph.initializer.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), "contentfn_pre_k"))
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
