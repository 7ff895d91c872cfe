#!/usr/bin/env bash
# The Node.js frontend on the GPU machine, which has no Node.js and no network: builds the addon against the
# core archive of the Python build there, runs the Node tests (CUDA ones included), the MLP example on the GPU
# and on the CPU, and benchmarks/js_overhead.mjs on both devices. Outputs go to $OUT (or benchmarks/results/):
# js_<card>.txt (everything printed) and js_overhead_{cpu,cuda}_<card>.json (the benchmark's JSON line).
#
# Carried with the tree (both ignored by git), prepared on a machine with Node 20 and network:
#   .node/node.tar.xz   a self-contained node binary:   mkdir -p .node && tar -C "$(dirname "$(readlink -f "$(command -v node)")")" -cJf .node/node.tar.xz node
#                       (or Debian/NodeSource's package: apt-get download nodejs && dpkg -x nodejs_*.deb /tmp/n &&
#                        tar -C /tmp/n/usr/bin -cJf .node/node.tar.xz node)
#   js/node_modules     cd js && npm ci --omit=dev   (two header-only packages: node-addon-api, node-api-headers)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export VT_CUDA_ARCHS="${VT_CUDA_ARCHS:-90a}"
if ! command -v node >/dev/null; then
  [[ -f .node/node.tar.xz ]] || { echo "no node: carry .node/node.tar.xz (see the top of this script)"; exit 1; }
  mkdir -p /tmp/vt-node && tar -C /tmp/vt-node -xJf .node/node.tar.xz && export PATH="/tmp/vt-node:$PATH"
fi
[[ -d js/node_modules/node-addon-api ]] || { echo "carry js/node_modules (cd js && npm ci --omit=dev)"; exit 1; }
n=$(nvidia-smi -L 2>/dev/null | wc -l)
card="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr ' ' '_')_x${n}"
log="$out/js_${card}.txt"
{
  echo "== node $(node --version)"
  # The core archive comes from the Python build (build/<wheel tag>/libvt_static.a).
  ls build/*/libvt_static.a >/dev/null 2>&1 || python3 -m pip install -q --no-index --no-deps --no-build-isolation .
  (cd js && node scripts/build.mjs) || exit 1
  echo "== node --test (js/test)"
  # The whole runner output is kept; failures are printed with their diagnostics, then the summary.
  (cd js && node --test test/) > "$out/js_node_test_${card}.txt" 2>&1
  grep -n -A40 "^not ok\|^    not ok" "$out/js_node_test_${card}.txt" | head -120
  tail -9 "$out/js_node_test_${card}.txt"
  echo "== examples/js/mlp.mjs cuda"; node examples/js/mlp.mjs cuda
  echo "== examples/js/mlp.mjs cpu"; node examples/js/mlp.mjs cpu
  for dev in cpu cuda; do
    echo "== benchmarks/js_overhead.mjs --device $dev"
    node benchmarks/js_overhead.mjs --device "$dev" | tee /tmp/js_overhead_$dev.txt
    tail -1 /tmp/js_overhead_$dev.txt > "$out/js_overhead_${dev}_${card}.json"
  done
} 2>&1 | tee "$log"
