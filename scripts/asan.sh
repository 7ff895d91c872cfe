#!/usr/bin/env bash
# The CPU core under AddressSanitizer and UndefinedBehaviorSanitizer: a separate build (build/asan, the module
# copied to $OUT/python so the developer build stays in place) and the CPU test suite run against it with the
# runtimes preloaded (Python itself is not instrumented). ASan stops at the first memory error; UBSan reports
# every undefined operation once per source line and goes on, so the run ends with a list of them.
#   scripts/asan.sh [OUT_DIR] [pytest args...]   -> OUT_DIR/asan_tests.txt (pytest, -s: sanitizer reports inline)
#                                                   and a summary of the UBSan reports by source line
# Not a CI stage: the build takes ~12 minutes on 2 cores and the suite ~3x its usual time. Expected noise: tests
# that compare against torch where torch reads uninitialised memory (ASan fills fresh allocations with 0xbe; the
# empty multilabel/multi margin losses), and NVRTC, whose builtins library does not load under the preload.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/vt_asan}"
shift || true
mkdir -p "$out"
checks="address,shift,signed-integer-overflow,bounds,vla-bound,return,bool,enum,pointer-overflow,builtin"
checks+=",integer-divide-by-zero,unreachable,alignment"
# (the full -fsanitize=undefined set makes some constexpr function-pointer tests non-constant under GCC 12)
cmake -S . -B build/asan -G Ninja -DVT_CUDA_ARCHS="${VT_CUDA_ARCHS:-90a}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVT_BUILD_PLUGINS=OFF "-DCMAKE_CXX_FLAGS=-fsanitize=$checks -fsanitize-recover=undefined -fno-omit-frame-pointer" \
  "-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined" > "$out/cmake.txt" || exit 1
saved=$(mktemp -d)
cp python/vibetensor/_C*.so "$saved/" 2>/dev/null
ninja -C build/asan _C > "$out/build.txt" 2>&1 || { echo "asan build failed: $out/build.txt"; exit 1; }
rm -rf "$out/python" && cp -r python "$out/python"
# the developer module back in place, newer than its inputs again
rm -f python/vibetensor/_C*.so && cp "$saved"/_C*.so python/vibetensor/ 2>/dev/null; rm -rf "$saved"
runtimes="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
LD_PRELOAD="$runtimes" ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=0:print_stacktrace=1 \
  PYTHONPATH="$out/python" python3 -m pytest tests -q -s -p no:cacheprovider -p no:xdist --ignore=tests/fuzz \
  --ignore=tests/abi "$@" > "$out/asan_tests.txt" 2>&1
rc=$?
echo "pytest rc=$rc; $(grep -c 'ERROR: AddressSanitizer' "$out/asan_tests.txt") ASan reports; UBSan reports by line:"
grep -o '[^ ]*: runtime error: [a-z -]*' "$out/asan_tests.txt" | sed -E 's/:[0-9]+: runtime/: runtime/' | sort | uniq -c
