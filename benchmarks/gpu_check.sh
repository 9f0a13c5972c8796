#!/usr/bin/env bash
# The one prepared GPU run (issue 13), from a fresh copy of the tree on a machine with an NVIDIA GPU:
#   1. `make venv ACCEL=cuda` (torch's CUDA build and onnxruntime-gpu[cuda,cudnn] from PyPI; skipped when
#      .venv already holds the CUDA install, or with --no-install);
#   2. the CUDA-marked conformance tests; 3. audiosep-bench over the CUDA variants at 1/5/10 s x batch
#      1/32/128 (benchmarks/gpu_check.py), writing bench.json and bench.md to $OUT (default ./gpu_check_out).
# --dry-run checks imports, options and the plan with whatever Python is at hand ($PYTHON, else .venv's,
# else python3), on any machine, and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
install=1
dry=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=(--dry-run); install=0 ;;
    --no-install) install=0 ;;
    *) echo "gpu_check.sh: unknown argument '$arg' (expected --dry-run or --no-install)" >&2; exit 2 ;;
  esac
done
if [ "$install" = 1 ]; then
  time make venv ACCEL=cuda
fi
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
mkdir -p "$OUT"
# The TensorRT engine and timing caches go under the run's cache root (ORT keys engines by model and GPU).
export AUDIOSEP_CACHE="${AUDIOSEP_CACHE:-$OUT/cache}"
exec "$PY" benchmarks/gpu_check.py --out "$OUT" "${dry[@]}"
