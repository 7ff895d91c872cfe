#!/usr/bin/env bash
# On a GPU machine without network: build with what is installed there, run the whole test suite, the CUDA
# tests under compute-sanitizer (memcheck, racecheck), the topology job and the benchmarks, and keep the outputs under $OUT (or benchmarks/results/), named by card.
# Files: check_<card>.txt (demo, tests, topo timing), eager_overhead_cpu_<card>.json, topo_<card>.txt
# (vt-fabric topo --rings --measure beside nvidia-smi topo -m / -p2p), topo_<card>.json, topo_<card>.png.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export VT_CUDA_ARCHS="${VT_CUDA_ARCHS:-90a}" NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
n=$(nvidia-smi -L | wc -l)
card="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')_x${n}"
python3 -m pip install -q --no-index --no-deps --no-build-isolation . || exit 1
{
  vt-demo
  python3 -m pytest tests -q -p no:cacheprovider 2>&1 | tail -3
  python3 benchmarks/topo_time.py
} 2>&1 | tee "$out/check_${card}.txt"
# CUDA tests under compute-sanitizer, the allocator in pass-through mode so every allocation is visible to it.
# A missing tool or any reported error fails the script.
command -v compute-sanitizer >/dev/null || { echo "compute-sanitizer not found" | tee -a "$out/check_${card}.txt"; exit 1; }
for tool in memcheck racecheck; do
  VT_CUDA_ALLOC_CONF=backend:passthrough compute-sanitizer --tool $tool --error-exitcode 9 \
    python3 -m pytest tests/cuda/test_cuda_tensors.py tests/cuda/test_streams.py -q -p no:cacheprovider \
    -k "not oom and not fraction and not alloc_conf" 2>&1 | tail -2 | tee -a "$out/check_${card}.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "compute-sanitizer $tool reported errors" | tee -a "$out/check_${card}.txt"; exit 1; }
done
python3 benchmarks/eager_overhead.py --json "$out/eager_overhead_cpu_${card}.json"
python3 benchmarks/cuda_memory.py --json "$out/cuda_memory_${card}.json"
if [ "$n" -ge 2 ]; then  # the NCCL reference for the ring allreduce (one process over all GPUs)
  python3 benchmarks/nccl_baseline.py --json "$out/nccl_baseline_${card}.json"
fi
{
  vt-fabric topo --rings
  echo; echo "== vt-fabric topo --measure"; vt-fabric topo --measure --json > "$out/topo_${card}.json" && \
    vt-fabric topo --from "$out/topo_${card}.json" | sed -n '/^Measurements/,$p'
  echo; echo "== nvidia-smi topo -m"; nvidia-smi topo -m
  for c in r w a; do echo; echo "== nvidia-smi topo -p2p $c"; nvidia-smi topo -p2p $c; done
} 2>&1 | tee "$out/topo_${card}.txt"
vt-fabric topo --from "$out/topo_${card}.json" --plot "$out/topo_${card}.png"
