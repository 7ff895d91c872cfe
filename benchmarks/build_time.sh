#!/usr/bin/env bash
# Build time as a newcomer meets it: the README's first command (`pip install .`) on a fresh clone in a fresh
# venv, cold (no ccache, empty build tree, default targets: VT_CUDA_ARCHS unset, so `auto`), then a warm rebuild
# (the same command again after touching one core source file, as after a one-line edit). Prints seconds.
#
#   benchmarks/build_time.sh                 # cold + warm, what the README's figures quote
#   benchmarks/build_time.sh --ccache        # same flow with ccache left on (validates the script, not a figure)
#   benchmarks/build_time.sh --no-isolation  # pip --no-build-isolation: build deps from the calling python
#                                            # (the venv sees its site-packages); for machines with no index
#   KEEP=1 benchmarks/build_time.sh          # keep the scratch clone and venv (path printed)
#
# Run it on a quiet machine: another compile beside it shares the cores and inflates the cold figure several
# times. The load average at the start is printed with the result so a figure carries its conditions.
# The clone is of HEAD (committed work only): uncommitted edits are not measured.
set -euo pipefail

ccache_mode=off isolation=1
for arg in "$@"; do
  case "$arg" in
    --ccache) ccache_mode=on ;;
    --no-isolation) isolation=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build_time.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/vt_build_time.XXXXXX")"
cleanup() { if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $scratch"; else rm -rf "$scratch"; fi; }
trap cleanup EXIT

git clone --quiet --no-hardlinks "$repo" "$scratch/src"
venv_flags=()
pip_flags=(-q)
if [[ $isolation == 0 ]]; then
  venv_flags+=(--system-site-packages)
  pip_flags+=(--no-build-isolation)
fi
"$python" -m venv "${venv_flags[@]}" "$scratch/venv"
vpython="$scratch/venv/bin/python"

unset VT_CUDA_ARCHS                       # default targets: what `pip install .` does for a newcomer
if [[ $ccache_mode == off ]]; then export CCACHE_DISABLE=1; fi

timed_install() {  # seconds for `pip install .` in the clone, printed on stdout
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$scratch/src" && "$vpython" -m pip install "${pip_flags[@]}" . >"$scratch/pip_$1.log" 2>&1) || {
    echo "build_time.sh: the $1 install failed; its log:" >&2; tail -40 "$scratch/pip_$1.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

load="$(cut -d' ' -f1-3 /proc/loadavg)"
cold=$(timed_install cold)
"$scratch/venv/bin/vt-fabric" topo >/dev/null   # the README's command runs to its end, as a newcomer's would
touch "$scratch/src/core/src/ops/binary_ops.cpp"
warm=$(timed_install warm)

printf 'build_time: cold %.0f s, warm rebuild (one core file touched) %.0f s; %s cores, ccache %s, ' \
  "$cold" "$warm" "$(nproc)" "$ccache_mode"
printf 'build isolation %s, commit %s, load average at start %s\n' \
  "$([[ $isolation == 1 ]] && echo on || echo off)" "$(git -C "$scratch/src" rev-parse --short HEAD)" "$load"
