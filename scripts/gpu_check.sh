#!/usr/bin/env bash
# On a GPU machine without network: build with what is installed there, run the whole test suite, the CUDA
# tests under compute-sanitizer (memcheck, racecheck), the topology job and the benchmarks, and keep the outputs under $OUT (or benchmarks/results/), named by card.
# Files: check_<card>.txt (demo, tests, sanitizer verdicts, topo timing, the summary table), tests_<card>.txt,
# eager_overhead_cpu_<card>.json, cuda_memory_<card>.json, cuda_ops_<card>.json, topo_<card>.txt
# (vt-fabric topo --rings --measure beside nvidia-smi topo -m / -p2p), topo_<card>.json, topo_<card>.png.
# VT_CHECK_STAGES picks stages (default all: "build tests fabric bench sanitize topo"; fabric: tests/fabric and the
# fabric examples on 2, 4 and 8 emulated devices, and benchmarks/fabric.py), so a run can be split over
# calls on one machine, e.g. VT_CHECK_STAGES="sanitize" after a first call that built. ring: the ring plugin's
# tests on 2, 3, 4 and 8 emulated devices, randomized #wrong checks, the crossover tuning and benchmarks/ring.py
# (the plugin needs the CUTLASS headers: carry the nvidia-cutlass wheel in .whl/, it is installed from there). The slow stage "longrun"
# (not in the default) trains MiniGPT and the ViT for 2,000 steps on both vibetensor and torch from the same
# weights and batches and compares the loss curves (long_horizon_<model>_cuda.{json,png}).
# Under a device call the build stage leaves the wheel it built in $OUT as 15 MB pieces (<wheel>.00, .01, ...);
# a later call on a fresh machine passes them back joined as VT_CHECK_WHEEL=<path> (carry it) and skips the
# ~2 minute build.
set -uo pipefail
cd "$(dirname "$0")/.."
stages=" ${VT_CHECK_STAGES:-build tests fabric ring bench sanitize topo} "
want() { [[ "$stages" == *" $1 "* ]]; }
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export VT_CUDA_ARCHS="${VT_CUDA_ARCHS:-90a}" NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
n=$(nvidia-smi -L | wc -l)
card="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')_x${n}"
if want build; then
  : > "$out/check_${card}.txt"
  ls .whl/nvidia_cutlass-*.whl >/dev/null 2>&1 && python3 -m pip install -q --no-index --no-deps .whl/nvidia_cutlass-*.whl
  if [ -n "${VT_CHECK_WHEEL:-}" ]; then
    # a wheel an earlier call built from the same sources (the caller vouches for that): a fresh machine skips
    # the build; the working tree's Python files go over the wheel's, so Python-only changes still count
    python3 -m pip install -q --no-index --no-deps "$VT_CHECK_WHEEL" || exit 1
    site=$(python3 -c 'import vibetensor, os; print(os.path.dirname(vibetensor.__file__))')
    (cd python/vibetensor && find . -name '*.py' -exec cp --parents {} "$site/" \;)
  else
    python3 -m pip wheel -q --no-index --no-deps --no-build-isolation -w /tmp/vt_wheel . || exit 1
    python3 -m pip install -q --no-index --no-deps /tmp/vt_wheel/vibetensor-*.whl || exit 1
    # back to the caller in 15 MB pieces (the device tool returns files up to 16 MiB): cat them for VT_CHECK_WHEEL;
    # only into a device call's $OUT, never into benchmarks/results, which is tracked
    if [ -n "${OUT:-}" ]; then
      w=$(ls /tmp/vt_wheel/vibetensor-*.whl)
      split -b 15M -d "$w" "$OUT/$(basename "$w")."
    fi
  fi
fi
if want tests; then
  {
    vt-demo
    # xdist workers with one OpenMP thread each: twelve workers of sixteen threads each took over 400 s on an
    # H100 machine's 16 cores (the model suites' CPU sides oversubscribing them). The whole log, with short
    # tracebacks of every failure, goes to tests_<card>.txt; the summary here.
    OMP_NUM_THREADS=1 python3 -m pytest tests -q -p no:cacheprovider -n 12 --tb=short -rf \
      > "$out/tests_${card}.txt" 2>&1
    grep -E "^(FAILED|ERROR)|passed|failed" "$out/tests_${card}.txt" | tail -40
    python3 benchmarks/topo_time.py
  } 2>&1 | tee -a "$out/check_${card}.txt"
fi
if want fabric; then
  {
    for k in 2 4 8; do
      echo "== tests/fabric with VT_EMULATE_DEVICES=$k"
      VT_EMULATE_DEVICES=$k python3 -m pytest tests/fabric -q -p no:cacheprovider -x 2>&1 | tail -3
    done
    for ex in examples/fabric_*.py; do
      echo "== $ex (VT_EMULATE_DEVICES=4)"; VT_EMULATE_DEVICES=4 python3 "$ex" 2>&1 | tail -4
    done
    echo "== benchmarks/fabric.py (VT_EMULATE_DEVICES=8)"
    VT_EMULATE_DEVICES=8 python3 benchmarks/fabric.py --json "$out/fabric_${card}_emulated8.json"
  } 2>&1 | tee -a "$out/check_${card}.txt"
fi
if want ring; then
  {
    for k in 2 3 4 8; do
      echo "== tests/fabric/test_ring.py with VT_EMULATE_DEVICES=$k"
      VT_EMULATE_DEVICES=$k python3 -m pytest tests/fabric/test_ring.py -q -p no:cacheprovider -n 4 2>&1 | tail -2
    done
    for k in 2 8; do
      echo "== vt-fabric bench allreduce --check 3000 (VT_EMULATE_DEVICES=$k)"
      VT_EMULATE_DEVICES=$k vt-fabric bench allreduce --check 3000 2>&1 | tail -2
    done
    echo "== vt-fabric bench allreduce --tune (VT_EMULATE_DEVICES=8)"
    VT_EMULATE_DEVICES=8 VT_RING_TUNING_DIR="$out" vt-fabric bench allreduce --tune -e 64M -n 10 -w 3 2>&1 | tail -12
    echo "== benchmarks/ring.py"
    python3 benchmarks/ring.py --ranks 2,4,8 --json "$out/ring_${card}_emulated.json"
  } 2>&1 | tee -a "$out/check_${card}.txt"
fi
if want bench; then
  python3 benchmarks/eager_overhead.py --json "$out/eager_overhead_cpu_${card}.json"
  {
    echo "== benchmarks/cuda_memory.py"; python3 benchmarks/cuda_memory.py --json "$out/cuda_memory_${card}.json"
    echo "== benchmarks/cuda_ops.py"; python3 benchmarks/cuda_ops.py --json "$out/cuda_ops_${card}.json"
    echo "== benchmarks/io.py"; python3 benchmarks/io.py --json "$out/io_${card}.json"
    nvcc -O2 -o /tmp/vt_launch_floor benchmarks/launch_floor.cu && /tmp/vt_launch_floor
  } 2>&1 | tee -a "$out/check_${card}.txt"
fi
if want sanitize; then
  # memcheck, racecheck and synccheck over every kernel family, the tools in parallel (scripts/sanitize.sh);
  # a missing tool, a tool past its time limit or any reported error fails the script.
  scripts/sanitize.sh "$out" 2>&1 | tee -a "$out/check_${card}.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || exit 1
fi
if want longrun; then
  python3 benchmarks/long_horizon.py --device cuda --steps 2000 --out "$out" 2>&1 | tee -a "$out/check_${card}.txt"
fi
if want topo; then
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
fi
