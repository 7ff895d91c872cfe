"""The "ring" collectives backend: the CUTLASS ring allreduce plugin (plugins/ring_allreduce), loaded through the
plugin ABI the first time a collective asks for it.

    vt.fabric.all_reduce(xs, backend="ring")                      # algorithm picked by size ("auto")
    vt.fabric.all_reduce(xs, backend="ring", algorithm="one_shot")
    vt.fabric.ring.status([0, 1, 2, 3])                           # the communicator of that device list

A communicator per ordered device list holds flags and a staging buffer on every rank, made on first use; calls
allocate nothing, launch one kernel per rank on its current stream (stream-ordered, capturable in CUDA graphs)
and never wait on the host. A rank that never arrives makes its peers give up after the timeout: the next call
(or check(), or Work.wait()) raises FabricTimeoutError naming the rank, the device and the step, and the
communicator stays broken until reset().

"auto" picks one_shot / two_shot / ring by message size from a crossover table: the one `vt-fabric bench
allreduce --tune` measured on this machine (saved as JSON), else built-in defaults.
"""
from __future__ import annotations

import json
import os
import pathlib

from .errors import FabricError

ALGORITHMS = {"auto": 0, "one_shot": 1, "two_shot": 2, "ring": 3}
OPS = {"sum": 0, "avg": 1, "max": 2, "min": 3}
DTYPES = ("float32", "float16", "bfloat16")
_loaded: dict = {}


def plugin_path() -> pathlib.Path | None:
    """Where the plugin is: $VT_RING_PLUGIN, else the copy installed with the package."""
    env = os.environ.get("VT_RING_PLUGIN")
    if env:
        return pathlib.Path(env)
    p = pathlib.Path(__file__).resolve().parent.parent / "plugins" / "vt_ring_allreduce.so"
    return p if p.exists() else None


def available() -> bool:
    """Whether the plugin file is there (checked once per process: "auto" asks on every call)."""
    if "available" not in _loaded:
        p = plugin_path()
        _loaded["available"] = p is not None and p.exists()
    return _loaded["available"]


def _ops():
    """vt.ops.ring, loading the plugin once."""
    ops = _loaded.get("ops")
    if ops is None:
        import vibetensor.torch as vt

        p = plugin_path()
        if p is None or not p.exists():
            raise FabricError("the ring backend's plugin was not built: the build found no CUTLASS headers "
                              "(pip install --no-deps nvidia-cutlass, then reinstall vibetensor), or set "
                              f"VT_RING_PLUGIN to a built vt_ring_allreduce.so{f' ({p} does not exist)' if p else ''}")
        vt.ops.load_library(p)
        ops = _loaded["ops"] = vt.ops.ring
    return ops


def supports(dtype_name: str, op: str | None) -> bool:
    return dtype_name in DTYPES and (op is None or op in OPS)


def _tuning_path(n: int) -> pathlib.Path:
    import vibetensor.cuda as vcuda

    card = vcuda.get_device_properties(0).name.replace(" ", "_")
    tag = f"{card}_x{n}{'_emulated' if vcuda.is_emulated() else ''}"
    base = os.environ.get("VT_RING_TUNING_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "vibetensor")
    return pathlib.Path(base) / f"ring_crossover_{tag}.json"


def crossover(n: int) -> list | None:
    """The measured table for n ranks on this machine: [[max_bytes or None, algorithm], ...] in size order."""
    key = ("table", n)
    if key not in _loaded:
        p = _tuning_path(n)
        try:
            _loaded[key] = json.loads(p.read_text())["rules"] if p.exists() else None
        except (OSError, ValueError, KeyError, TypeError):
            _loaded[key] = None
    return _loaded[key]


def save_crossover(n: int, rules: list, measured: dict) -> pathlib.Path:
    p = _tuning_path(n)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"nranks": n, "rules": rules, "measured": measured}, indent=1))
    _loaded.pop(("table", n), None)
    return p


# The plugin's own choice where no table was measured (Comm::pick_algo in plugins/ring_allreduce/src/comm.cpp).
PLUGIN_ONE_SHOT_MAX_BYTES = 256 << 10


def pick(nbytes: int, n: int) -> str:
    """The algorithm "auto" runs for one rank's message of nbytes: the measured table, else the plugin's defaults."""
    for limit, alg in crossover(n) or []:
        if limit is None or nbytes <= limit:
            return alg
    return "one_shot" if nbytes <= PLUGIN_ONE_SHOT_MAX_BYTES else "two_shot"


def run(kind: str, ins, outs, op: str | None, algorithm: str, timeout: float | None, in_place=None) -> str:
    """One collective on the plugin; `in_place` (all_reduce), when the caller already knows it, saves a pass.
    Returns the algorithm that ran ("one_shot" for reduce_scatter and all_gather, which have one)."""
    ops = _ops()
    timeout_ms = int(timeout * 1e3) if timeout else 0
    if kind == "all_reduce":
        if algorithm not in ALGORITHMS:
            raise ValueError(f"all_reduce: unknown ring algorithm {algorithm!r} (one of {', '.join(ALGORITHMS)})")
        if algorithm == "auto":
            algorithm = pick(ins[0].numel() * ins[0].element_size(), len(ins))
        if in_place is None:
            in_place = outs is None or all(o.data_ptr() == i.data_ptr() for o, i in zip(outs, ins))
        ops.all_reduce(list(ins), [] if in_place else list(outs), OPS[op or "sum"], ALGORITHMS[algorithm], timeout_ms)
        return algorithm
    if kind == "reduce_scatter":
        ops.reduce_scatter(list(ins), list(outs), OPS[op or "sum"], timeout_ms)
    elif kind == "all_gather":
        ops.all_gather(list(ins), list(outs), timeout_ms)
    else:
        raise FabricError(f"the ring backend has no {kind} (all_reduce, reduce_scatter, all_gather)")
    return "one_shot"


def check(devices) -> None:
    """Raises FabricTimeoutError if a collective over `devices` gave up waiting (no host sync)."""
    if "ops" in _loaded:
        _loaded["ops"].check(list(devices))


_STATUS = ("exists", "broken", "error_state", "rank", "device", "block", "step", "peer", "waited_ns", "calls",
           "nranks", "emulated")


def status(devices) -> dict:
    """The communicator of `devices`: whether it exists, is broken, its error record and call count."""
    if "ops" not in _loaded:
        return dict.fromkeys(_STATUS, 0)
    return dict(zip(_STATUS, _loaded["ops"].status(list(devices)).tolist()))


def reset(devices) -> None:
    """Waits for the devices and frees the communicator of `devices` (broken or not); the next call makes a new one."""
    if "ops" in _loaded:
        _loaded["ops"].destroy(list(devices))


def inject_fault(devices, rank: int) -> None:
    """Fault injection: the next collective over `devices` does not launch rank `rank` (a peer that never arrives)."""
    _ops().inject_fault(list(devices), rank)
