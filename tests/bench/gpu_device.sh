#!/usr/bin/env bash
# bench-gpu on a lent GPU machine that has Python, numpy, pillow, onnx and a CPU onnxruntime but no
# registry access: everything else travels as wheels under .ortgpu/ (ignored by git).
#
#   here, once:        tests/bench/gpu_device.sh prepare
#                      -> .ortgpu/part.00 .. part.NN  (onnxruntime-gpu, unpacked and xz-compressed, in
#                                                      62 MB chunks: four calls' worth instead of five)
#                      -> .ortgpu/deps/               (psycopg, pgserver, pydantic-settings, ... + the model)
#   on the device, one call per chunk but the last, carrying that chunk:
#                      tests/bench/gpu_device.sh stash .ortgpu/part.0N
#   on the device, last call, carrying the last chunk and .ortgpu/deps:
#                      tests/bench/gpu_device.sh run [bench_gpu arguments]
#                      (the H200 figures in docs/benchmarks.md: --batches 128 --processes 8 --device-process on
#                       --device-calls 1,2 --max-wait-ms 2000 --images 8192; about 100 s with the install)
#   or, to see what slows model calls down there:
#                      tests/bench/gpu_device.sh probe [gpu_probe arguments]
set -euo pipefail
cd "$(dirname "$0")/../.."
ORT_VERSION="${ORT_VERSION:-1.31.1}"
PY="${PYTHON:-python3}"

case "${1:-}" in
prepare)
    rm -rf .ortgpu && mkdir -p .ortgpu/deps
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 -d .ortgpu "onnxruntime-gpu==${ORT_VERSION}"
    # A wheel is a zip of what goes into site-packages; unpacked and compressed with xz it is a fifth
    # smaller than its deflate (255 MB), and each chunk plus the working tree must fit in 64 MiB.
    mkdir -p .ortgpu/unpacked
    "$PY" -m zipfile -e .ortgpu/onnxruntime_gpu-*.whl .ortgpu/unpacked
    tar -C .ortgpu/unpacked -cf - . | xz -9 -T0 | (cd .ortgpu && split -b 62000000 -d - part.)
    rm -rf .ortgpu/unpacked .ortgpu/onnxruntime_gpu-*.whl
    "$PY" -m pip download --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .ortgpu/deps "psycopg[binary]>=3.2" "psycopg-pool>=3.2" "pgvector>=0.3" "pgserver>=0.1.4" \
        "pydantic>=2.7" "pydantic-settings>=2.3" "rich>=13.7" "prometheus-client>=0.20"
    model="$("$PY" -c 'from shared.vision.detector import default_model_path as d; print(d() or "")')"
    test -n "$model" || { echo "install the nudenet wheel first (its 320n.onnx is the benchmark model)"; exit 2; }
    cp "$model" .ortgpu/deps/320n.onnx
    # Real photos to make the benchmark's JPEGs from (the device has no scikit-image): detections,
    # NMS and their rows cost what they cost on real content.
    mkdir -p .ortgpu/deps/photos
    "$PY" -c 'import sys; from PIL import Image; from tests.bench.bench_gpu import SAMPLE_PHOTOS, sample_photos
for name, px in zip(SAMPLE_PHOTOS, sample_photos()): Image.fromarray(px).save(f"{sys.argv[1]}/{name}.png")' .ortgpu/deps/photos
    ls -la .ortgpu .ortgpu/deps
    ;;
stash)
    mkdir -p /tmp/ort && cp "$2" /tmp/ort/
    ls -la /tmp/ort
    ;;
run|probe)
    what="$1"
    shift
    mkdir -p /tmp/ort
    cp .ortgpu/part.* /tmp/ort/ 2>/dev/null || true
    if [ ! -d /tmp/site/onnxruntime ]; then
        mkdir -p /tmp/site
        cat /tmp/ort/part.* | "$PY" -c 'import sys, tarfile
tarfile.open(fileobj=sys.stdin.buffer, mode="r|xz").extractall(sys.argv[1], filter="data")' /tmp/site
        "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .ortgpu/deps/*.whl
    fi
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
    nvidia_libs="$("$PY" -c 'import glob, os, sys; print(":".join(sorted(glob.glob(os.path.join(sys.prefix, "lib/python3*/site-packages/nvidia/*/lib")))))')"
    export LD_LIBRARY_PATH="${nvidia_libs}:${LD_LIBRARY_PATH:-}"
    "$PY" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())'
    export CONTENTFN_DETECTOR_MODEL_PATH="$PWD/.ortgpu/deps/320n.onnx"
    if [ "$what" = probe ]; then
        exec "$PY" -m tests.bench.gpu_probe "$@"
    fi
    # A device call is stopped at 10 minutes: start no configuration that would likely run past
    # BENCH_BUDGET_S (the install above came first), so the run still prints its table.
    exec "$PY" -m tests.bench.bench_gpu --photo-dir .ortgpu/deps/photos --budget-s "${BENCH_BUDGET_S:-480}" "$@"
    ;;
*)
    sed -n 2,16p "$0"
    exit 2
    ;;
esac
