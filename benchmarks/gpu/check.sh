#!/usr/bin/env bash
# The prepared GPU check of issue 15: conformance through the torch provider on CUDA, DLPack
# exchange with torch/CuPy, and latency against the same architecture run natively by torch at
# batch 8 / sequence 128 with compile=1 (batch 1 reported). Needs a Python with torch (CUDA
# build), onnxruntime, onnx and numpy; transformers, torchvision and CuPy are used when present.
# No package registry and no downloads: the models are built from configurations.
#
#   bash benchmarks/gpu/check.sh                 # on the GPU (about 5-7 minutes on an H100)
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu/check.sh   # the same steps, small, on the CPU
#
# Results: stdout, and $OUT/gpu_check.json when $OUT is set. Stops itself after 7.5 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
ARGS=(--device "${DEVICE:-cuda}")
if [ -n "${QUICK:-}" ]; then ARGS+=(--quick); fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
# the GPU-only tests (device OrtValues, CUDAExecutionProvider), if pytest is there
if "$PY" -c "import pytest" 2>/dev/null && [ "${DEVICE:-cuda}" != cpu ]; then
  timeout 90 "$PY" -m pytest -q -p no:cacheprovider tests/backends/torch/test_provider.py \
    -k "gpu or cuda or device" || echo "GPU tests failed (see above)"
fi
timeout 420 "$PY" benchmarks/gpu/check.py "${ARGS[@]}" "$@"
