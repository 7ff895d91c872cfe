#!/usr/bin/env bash
# On a GPU machine without network: build with what is installed, run the whole test suite and the
# benchmarks, and keep the outputs under $OUT (or benchmarks/results/). CUDA kernels arrive with issue 3;
# until then this proves the package builds for the card, sees it, and behaves the same as on CPU machines.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export VT_CUDA_ARCHS="${VT_CUDA_ARCHS:-90a}"
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')
python3 -m pip install -q --no-index --no-deps --no-build-isolation .
vt-demo | tee "$out/demo_${card}.txt"
python3 -m pytest tests -q -p no:cacheprovider 2>&1 | tail -3 | tee "$out/tests_${card}.txt" || true  # keep going to the benchmarks
python3 benchmarks/eager_overhead.py --json "$out/eager_overhead_cpu_${card}.json" | tee "$out/eager_overhead_cpu_${card}.txt"
