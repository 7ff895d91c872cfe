#!/usr/bin/env bash
# compute-sanitizer over every CUDA kernel family, the tools in parallel on one GPU.
#
# The workload is tests/cuda/test_kernel_families.py (each kernel family once at a representative size, torch on
# the CPU as the reference, so the tools see only vibetensor's kernels) plus the copy, stream and deferred-error
# tests. The op suites' sweeps (thousands of launches each) would take the tools hours. Each tool
# (VT_SANITIZE_TOOLS, default "memcheck racecheck synccheck") runs as its own process; the allocator runs in
# pass-through mode so every allocation is visible to the tool (graph capture is refused in that mode, so graphs
# are not in it). Each process is bounded by VT_SANITIZE_TIMEOUT seconds (default 540): one that runs out
# reports "timeout" and fails the run.
#
#   scripts/sanitize.sh [OUT_DIR]    -> OUT_DIR/sanitize_<tool>.log and a summary line per tool; exit 0 only
#                                       when every tool passed with "ERROR SUMMARY: 0 errors"
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-/tmp}}"
limit="${VT_SANITIZE_TIMEOUT:-540}"
command -v compute-sanitizer >/dev/null || { echo "compute-sanitizer not found"; exit 1; }
mkdir -p "$out"

workload=(tests/cuda/test_kernel_families.py tests/cuda/test_cuda_kernel_errors.py tests/cuda/test_streams.py
  tests/cuda/test_cuda_tensors.py)
# Not under the tools: tests of allocator limits (pass-through mode has none), graph capture (refused in
# pass-through mode) and the subprocess of the sync-mode test (a second sanitized process for one assertion).
deselect="not oom and not fraction and not alloc_conf and not graph and not sync_mode"

start=$SECONDS
pids=()
for tool in ${VT_SANITIZE_TOOLS:-memcheck racecheck synccheck}; do
  log="$out/sanitize_${tool}.log"
  ( VT_CUDA_ALLOC_CONF=backend:passthrough timeout "$limit" compute-sanitizer --tool "$tool" --error-exitcode 9 \
      python3 -m pytest "${workload[@]}" -q -p no:cacheprovider -k "$deselect" > "$log" 2>&1
    echo "rc=$?" >> "$log" ) &
  pids+=($!)
done
wait "${pids[@]}"

status=0
for log in "$out"/sanitize_*.log; do
  name=$(basename "$log" .log)
  rc=$(grep -o "^rc=[0-9]*" "$log" | tail -1 | cut -d= -f2)
  tests=$(grep -E "[0-9]+ (passed|failed)" "$log" | tail -1)
  errors=$(grep -E "(ERROR|RACECHECK) SUMMARY" "$log" | tail -1)
  verdict=ok
  if [ "$rc" = 124 ]; then verdict="timeout after ${limit} s"; status=1
  elif [ "$rc" != 0 ]; then verdict="failed (rc $rc)"; status=1
  fi
  printf '%-22s %-20s %s | %s\n' "$name" "$verdict" "${tests:-no pytest summary}" "${errors:-no error summary}"
done
echo "compute-sanitizer ${VT_SANITIZE_TOOLS:-memcheck racecheck synccheck}: $((SECONDS - start)) s wall, $([ $status = 0 ] && echo 'no errors' || echo 'FAILED')"
exit $status
