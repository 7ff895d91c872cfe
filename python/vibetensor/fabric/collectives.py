"""Collectives over lists of per-device tensors: all_reduce, reduce_scatter, all_gather, broadcast, reduce.

    vt.fabric.all_reduce([x0, x1, x2, x3])                 # in place, sum, on each device's current stream
    w = vt.fabric.all_reduce(xs, op="avg", out=ys, async_op=True); w.wait(timeout=5.0)

Shapes follow torch.cuda.nccl: one tensor per device (no two on one device), equal shapes and dtypes;
reduce_scatter's inputs are n times its outputs and all_gather's outputs n times its inputs (flattened,
chunk r belongs to rank r). Every call is stream-ordered: it is enqueued on each device's current stream and
returns without waiting on the host; `async_op=True` returns a Work whose wait(timeout) is bounded and raises
FabricTimeoutError naming the devices that never arrived.

Backends: "ring" runs the CUTLASS ring allreduce plugin (vibetensor.fabric.ring: one kernel per rank, device-side
flags, no host waits; float32/float16/bfloat16 all_reduce, reduce_scatter and all_gather over pairs with peer
access); "p2p" runs a schedule (vibetensor.fabric.schedules) with one kernel per transfer reading peers through
unified addresses and event barriers between steps - correct everywhere, emulation included; "nccl" calls NCCL
(real, distinct GPUs only); "auto" takes NCCL where it can run, else "ring" where it applies, else "p2p".
Algorithms of the p2p backend: "one_shot" (each device reads every input), "two_shot" (reduce-scatter then
all-gather), "ring", and "auto" (one-shot up to 256 KiB, two-shot above). Pairs the Fabric stages (no usable P2P) make the p2p backend
stage inputs to the reading device first and run one-shot, counted as fallbacks with their reason.
"""
from __future__ import annotations

import functools
import os
import time

from .. import _C
from . import nccl as _nccl
from . import ring as _ring
from . import schedules as S
from ._fabric import fabric_for
from .errors import FabricError

_fab = _C.fabric
OPS = {"sum": 0, "avg": 1, "max": 2, "min": 3}
BACKENDS = ("auto", "p2p", "nccl", "ring")
_RING_KINDS = ("all_reduce", "reduce_scatter", "all_gather")
ONE_SHOT_MAX_BYTES = 256 << 10
_FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")


_DTYPE_NAMES: dict = {}


def _dtype_name(t) -> str:
    """"float32" for a vt.float32 tensor (cached: str() of a dtype costs more than the rest of a lookup)."""
    d = t.dtype
    name = _DTYPE_NAMES.get(d)
    if name is None:
        name = _DTYPE_NAMES[d] = str(d).rsplit(".", 1)[-1]
    return name


def default_timeout() -> float | None:
    v = os.environ.get("VT_FABRIC_TIMEOUT_MS")
    return float(v) / 1e3 if v else None


class Work:
    """A collective in flight. wait() blocks the host (bounded by `timeout` seconds) until every device's part
    has finished; the devices' streams are already ordered after it without any wait."""

    def __init__(self, kind, devices, p2p_work=None, events=None, ring=False):
        self.kind, self.devices = kind, devices
        self._p2p, self._events, self._ring = p2p_work, events or [], ring

    def is_completed(self) -> bool:
        if self._p2p is not None:
            return self._p2p.query()
        return all(e.query() for e in self._events)

    def wait(self, timeout: float | None = None) -> bool:
        timeout = default_timeout() if timeout is None else timeout
        if self._p2p is not None:
            self._p2p.wait(0.0 if timeout is None else timeout * 1e3)
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_completed():
            if deadline is not None and time.monotonic() > deadline:
                from .errors import FabricTimeoutError

                late = [d for d, e in zip(self.devices, self._events) if not e.query()]
                raise FabricTimeoutError(f"{self.kind} timed out after {timeout} s on "
                                         f"{', '.join(f'cuda:{d}' for d in late)}")
            time.sleep(50e-6)
        if self._ring:  # the kernels ended; did one give up waiting for a peer?
            _ring.check(self.devices)
        return True


# Note [Lean collective front]: a 1 KiB all_reduce over 8 devices costs the host a few microseconds per rank in
# the kernels' launches (4.7 us each on an H200 machine measured by benchmarks/launch_floor.cu); what runs in
# front of them runs once per call, so it must stay small beside them. The argument checks run in one C++ call
# (_fab.collective_devices: 6.4 -> ~1 us over 8 tensors) that only answers whether every rule holds; when one
# does not, the Python checks below run to name the problem, so the messages live in one place. The per-pair
# route lookups happen once per Fabric and device list (_any_staged), and the traffic counters of a call are
# bumped in one C++ call (count_traffic -> fabric::count_all).
def _validate(kind, tensors, outputs, op, numel_ratio):
    devices = None
    if isinstance(tensors, (list, tuple)) and tensors:
        try:
            devices = _fab.collective_devices(tensors, outputs, *numel_ratio)
        except TypeError:  # an element is not a tensor: _check_tensors names it
            pass
    if devices is None:
        devices = _check_tensors(kind, tensors, outputs, numel_ratio)
    if op is not None:
        if op not in OPS:
            raise ValueError(f"{kind}: unknown op {op!r} (one of {', '.join(OPS)})")
        if op == "avg" and _dtype_name(tensors[0]) not in _FLOAT_DTYPES:
            raise FabricError(f"{kind}: op 'avg' needs a floating dtype, got {tensors[0].dtype}")
        if _dtype_name(tensors[0]) == "bool" and op != "max" and op != "min":
            raise FabricError(f"{kind}: op {op!r} is not defined for bool tensors (use max or min)")
    return devices


def _check_tensors(kind, tensors, outputs, numel_ratio):
    """The rules collective_devices checks, each with its message (the slow path of _validate)."""
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{kind}: expected a non-empty list of per-device tensors, got {type(tensors).__name__}")
    devices = []
    t0 = tensors[0]
    shape0 = dtype0 = None
    for i, t in enumerate(tensors):
        try:
            d = t.get_device()
        except AttributeError:
            raise TypeError(f"{kind}: tensors[{i}] is {type(t).__name__}, not a tensor") from None
        if d < 0:
            raise FabricError(f"{kind}: tensors[{i}] is on {t.device}; collectives take CUDA tensors")
        if d in devices:
            raise FabricError(f"{kind}: tensors[{i}] and tensors[{devices.index(d)}] are both on "
                              f"cuda:{d}; give one tensor per device")
        devices.append(d)
        if shape0 is None:
            shape0, dtype0 = tuple(t0.shape), t0.dtype
        elif tuple(t.shape) != shape0 or t.dtype != dtype0:
            raise FabricError(f"{kind}: tensors[{i}] is {list(t.shape)} {t.dtype} but tensors[0] is "
                              f"{list(shape0)} {dtype0}; all must match")
        if not t.is_contiguous():
            raise FabricError(f"{kind}: tensors[{i}] is not contiguous; call .contiguous() first")
    if outputs is not None:
        if len(outputs) != len(tensors):
            raise FabricError(f"{kind}: {len(outputs)} outputs for {len(tensors)} inputs")
        for i, (o, t) in enumerate(zip(outputs, tensors)):
            if o is None or not hasattr(o, "device") or o.device != t.device:
                raise FabricError(f"{kind}: outputs[{i}] must be a tensor on {t.device}")
            if not o.is_contiguous() or o.dtype != t.dtype:
                raise FabricError(f"{kind}: outputs[{i}] must be contiguous {t.dtype}")
            if o.numel() * numel_ratio[1] != t.numel() * numel_ratio[0]:
                raise FabricError(f"{kind}: outputs[{i}] has {o.numel()} elements; expected "
                                  f"{t.numel() * numel_ratio[0] // numel_ratio[1]} for an input of {t.numel()}")
    return devices


def _pick_backend(backend, kind, devices, dtype_name, op, fabric):
    if backend not in BACKENDS:
        raise ValueError(f"unknown collectives backend {backend!r} (one of {', '.join(BACKENDS)})")
    ring_ok = kind in _RING_KINDS and _ring.supports(dtype_name, op)
    if backend == "ring":
        if not ring_ok:
            raise FabricError(f"{kind}: the ring backend runs all_reduce, reduce_scatter and all_gather over "
                              f"{', '.join(_ring.DTYPES)}; got {kind} over {dtype_name}")
        if fabric._any_staged(devices):
            a, b = next((a, b) for a in devices for b in devices if a != b and fabric.route(a, b)[0] == "staged")
            raise FabricError(f"{kind}: the ring backend reads peers directly, but cuda:{a} -> cuda:{b} is staged "
                              f"({fabric.route(a, b)[1]}); use backend='p2p'")
    if backend != "auto":
        return backend
    import vibetensor.cuda as vcuda

    if len(devices) > 1 and not vcuda.is_emulated() and dtype_name != "bool" and _nccl.available():
        return "nccl"
    if ring_ok and len(devices) > 1 and _ring.available() and not fabric._any_staged(devices):
        return "ring"
    return "p2p"


def _view(t, ref_chunk, nchunks):
    flat = t.reshape(-1)
    if ref_chunk is None:
        return flat
    lo, hi = S.chunk_bounds(flat.numel(), nchunks, ref_chunk)
    return flat[lo:hi]


_BUFFERS = {"in": 0, "out": 1, "tmp": 2}


@functools.lru_cache(maxsize=256)
def _schedule(kind, alg, n, in_place, root) -> S.Schedule:
    if kind == "all_reduce":
        return S.all_reduce(n, alg, in_place)
    if kind == "broadcast":
        return S.broadcast(n, root)
    if kind == "reduce":
        return S.reduce(n, root)
    return {"reduce_scatter": S.reduce_scatter, "all_gather": S.all_gather}[kind](n)


_plans: dict = {}


def _plan(sched: S.Schedule):
    """The schedule compiled once into the C++ executor's form (schedules are cached, so identity is the key)."""
    plan = _plans.get(id(sched))
    if plan is None:
        def ref(r):
            return (r.rank, _BUFFERS[r.buffer], -1 if r.chunk is None else r.chunk)

        steps = [[(ref(t.dst), [ref(s) for s in t.srcs], t.scale) for t in step] for step in sched.steps]
        plan = _plans[id(sched)] = (sched, _fab.P2PPlan(steps, sched.nchunks, sched.needs_tmp))
    return plan[1]


def _run_p2p(kind, sched, ins, outs, op, devices, fabric):
    if not fabric._any_staged(devices):
        return _plan(sched).run(ins, outs, devices, OPS[op or "sum"], 1.0 / len(devices))
    # some pair is staged: copy what the reader needs to it first (one-shot schedules read inputs only)
    staged = {(a, b) for a in devices for b in devices if a != b and fabric.route(a, b)[0] == "staged"}
    tmp = [vt_empty_like(t) for t in ins] if sched.needs_tmp else None
    bufs = {"in": ins, "out": outs, "tmp": tmp}
    steps, counted = [], []
    for step in sched.steps:
        ts = []
        for tr in step:
            dst = _view(bufs[tr.dst.buffer][tr.dst.rank], tr.dst.chunk, sched.nchunks)
            srcs = []
            for ref in tr.srcs:
                v = _view(bufs[ref.buffer][ref.rank], ref.chunk, sched.nchunks)
                a, b = devices[tr.dst.rank], devices[ref.rank]
                if a != b:
                    route, why = fabric.route(a, b)
                    counted.append((a, b, v.numel() * v.element_size(), route, why))
                    if (a, b) in staged:  # copied to the reader first (one-shot schedules read inputs only)
                        v = v.to(f"cuda:{a}")
                srcs.append(v)
            ts.append((dst, srcs, tr.scale))
        steps.append(ts)
    work = _fab.run_p2p_schedule(steps, devices, OPS[op or "sum"], 1.0 / len(devices))
    for a, b, nbytes, route, why in counted:
        _fab.count(a, b, nbytes, route, why)
    return work


def vt_empty_like(t):
    import vibetensor.torch as vt

    return vt.empty_like(t)


def _record_events(devices):
    import vibetensor.cuda as vcuda

    return [vcuda.current_stream(d).record_event() for d in devices]


def _collective(kind, tensors, outputs, op, backend, algorithm, root, async_op, numel_ratio):
    devices = _validate(kind, tensors, outputs, op, numel_ratio)
    if root is not None and not 0 <= root < len(tensors):
        raise FabricError(f"{kind}: root {root} is not a rank of {len(tensors)} tensors")
    fabric = fabric_for(devices)
    fabric._check_open()
    n = len(devices)
    ins = list(tensors)
    outs = list(outputs) if outputs is not None else ins
    in_place = outputs is None or all(o.data_ptr() == i.data_ptr() for o, i in zip(outs, ins))
    dname = _dtype_name(ins[0])
    chosen = _pick_backend(backend, kind, devices, dname, op, fabric)
    nbytes = ins[0].numel() * ins[0].element_size()
    if _fab.tracing():
        _fab.record_event("collective", f"{kind}/{chosen}", devices[0], -1, nbytes * n, 0, "", f"devices={devices}")
    if chosen == "nccl":
        _nccl.run(kind, ins, outs, op or "sum", root or 0, devices)
        return Work(kind, devices, events=_record_events(devices)) if async_op else None
    if chosen == "ring":
        ran = _ring.run(kind, ins, outputs, op, algorithm if kind == "all_reduce" else "auto", default_timeout(),
                        in_place)
        # Note [Counted backend traffic]: the plugin moves the same data as the p2p schedule of the algorithm it
        # ran (each rank pulls the same chunks from the same peers, its own way), so that schedule counts it on
        # the pairs. NCCL picks its own rings and trees, so its traffic is not counted per pair.
        _plan(_schedule(kind, ran, n, in_place, root)).count_traffic(
            ins[0].numel(), outs[0].numel(), ins[0].element_size(), devices)
        return Work(kind, devices, events=_record_events(devices), ring=True) if async_op else None
    staged = fabric._any_staged(devices)
    alg = algorithm
    if kind == "all_reduce" and (alg == "auto" or staged):
        alg = "one_shot" if staged or nbytes <= ONE_SHOT_MAX_BYTES or n <= 2 else "two_shot"
    sched = _schedule(kind, alg, n, in_place, root)
    for d in fabric.faults.hung_devices & set(devices):  # fault injection: d never arrives (bounded stall)
        stall = (default_timeout() or 1.0) * 1e3 * 1.5 + 200
        _fab.inject_stall(d, stall)
    work = _run_p2p(kind, sched, ins, outs, op, devices, fabric)
    return Work(kind, devices, p2p_work=work) if async_op else None


def all_reduce(tensors, op="sum", *, out=None, backend="auto", algorithm="auto", async_op=False):
    """out[r] (default: tensors[r], in place) = op over ranks of tensors[r]."""
    return _collective("all_reduce", tensors, out, op, backend, algorithm, None, async_op, (1, 1))


def reduce_scatter(tensors, out, op="sum", *, backend="auto", async_op=False):
    """out[r] = op over ranks of chunk r of tensors[rank] (each input n times its output)."""
    return _collective("reduce_scatter", tensors, out, op, backend, "one_shot", None, async_op, (1, len(tensors)))


def all_gather(tensors, out, *, backend="auto", async_op=False):
    """chunk j of out[r] = tensors[j] (each output n times its input)."""
    return _collective("all_gather", tensors, out, None, backend, "one_shot", None, async_op, (len(tensors), 1))


def broadcast(tensors, root=0, *, backend="auto", async_op=False):
    """tensors[r] = tensors[root] for every rank."""
    return _collective("broadcast", tensors, None, None, backend, "one_shot", root, async_op, (1, 1))


def reduce(tensors, root=0, op="sum", *, out=None, backend="auto", async_op=False):
    """out (default tensors[root]) = op over ranks of tensors[r]; only the root's output is written."""
    outs = None
    if out is not None:
        outs = list(tensors)
        outs[root] = out
    return _collective("reduce", tensors, outs, op, backend, "one_shot", root, async_op, (1, 1))
