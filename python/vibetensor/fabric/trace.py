"""Fabric traces: the event ring as a Chrome/Perfetto trace (Trace Event JSON).

    vt.fabric.trace.start()             # GPU timing on, ring cleared, a timing origin on every device
    ... cross-device ops, collectives, copies ...
    vt.fabric.trace.stop()
    vt.fabric.trace.export("fabric.json")   # open in ui.perfetto.dev or chrome://tracing

Layout: one process per device ("cuda:k", marked emulated when it is), one thread per stream; fabric ops and
collectives are complete ("X") events at their GPU times (CUDA events recorded around the kernels, resolved only
at export); host-side records (enqueue, fallback, error, collective issue) are instant events on a "host"
process at their host times; allocator actions (vibetensor.cuda.memory._record_memory_history) join as instant
events on their device. Times are microseconds from start(). The ring is bounded (Note [Event ring]): the
export's metadata says how many records were dropped.
"""
from __future__ import annotations

import json

from .. import _C

_fab = _C.fabric
_state = {"active": False, "devices": []}


def start(devices=None, *, gpu_timing: bool = True, capacity: int | None = None) -> None:
    import vibetensor.cuda as vcuda

    devs = list(range(vcuda.device_count())) if devices is None else [int(d) for d in devices]
    if capacity is not None:
        _fab.set_ring_capacity(capacity)
    _fab.clear_ring()
    if devs:
        _fab.set_origin(devs)
    _fab.set_gpu_timing(bool(gpu_timing) and bool(devs))
    _fab.set_tracing(True)
    _state.update(active=True, devices=devs)


def stop() -> None:
    _fab.set_gpu_timing(False)
    _fab.set_tracing(False)
    _state["active"] = False


def is_active() -> bool:
    return _state["active"]


def events() -> list[dict]:
    """The ring's records, oldest first (GPU times resolved where finished)."""
    return _fab.read_ring()


def to_chrome(records=None, allocator_events=True) -> dict:
    import vibetensor.cuda as vcuda

    records = events() if records is None else records
    origin = _fab.origin_host_ns()
    emulated = vcuda.is_emulated() if vcuda.is_available() else False
    out, named = [], set()

    def name_track(pid, tid, pname, tname):
        if (pid, None) not in named:
            out.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": pname}})
            named.add((pid, None))
        if (pid, tid) not in named:
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": tname}})
            named.add((pid, tid))

    host_pid = 1000
    for r in records:
        args = {k: r[k] for k in ("bytes", "peer", "reason", "detail") if r[k] not in ("", -1, 0)}
        if r["gpu_start_us"] >= 0 and r["device"] >= 0:
            pid, tid = r["device"], r["stream"] % (1 << 31)
            name_track(pid, tid, f"cuda:{pid}{' (emulated)' if emulated else ''}", f"stream {r['stream']:#x}")
            out.append({"ph": "X", "name": r["name"], "cat": r["kind"], "pid": pid, "tid": tid,
                        "ts": r["gpu_start_us"], "dur": max(r["gpu_end_us"] - r["gpu_start_us"], 0.0), "args": args})
        name_track(host_pid, 0, "host", "fabric calls")
        out.append({"ph": "i", "s": "t", "name": f"{r['kind']}: {r['name']}", "cat": r["kind"], "pid": host_pid,
                    "tid": 0, "ts": (r["host_ns"] - origin) / 1e3, "args": args})
    if allocator_events and vcuda.is_available():
        _allocator_events(out, name_track, origin)
    meta = {"dropped": _fab.ring_dropped(), "capacity": _fab.ring_capacity(),
            "emulated": vcuda.emulation_label() if emulated else ""}
    return {"traceEvents": out, "displayTimeUnit": "ns", "otherData": meta}


def _allocator_events(out, name_track, origin_ns):
    import time

    try:
        from ..cuda import memory as vmem

        snap = vmem._snapshot()
    except Exception:  # history never recorded: nothing to add
        return
    # allocator times are wall-clock microseconds; map them onto the trace's steady-clock origin
    wall_minus_steady_us = time.time() * 1e6 - time.monotonic_ns() / 1e3
    for dev, trace in enumerate(snap.get("device_traces", [])):
        for e in trace:
            ts = e.get("time_us", 0) - wall_minus_steady_us - origin_ns / 1e3
            if ts < 0:
                continue
            name_track(dev, 1, f"cuda:{dev}", "allocator")
            out.append({"ph": "i", "s": "t", "name": e.get("action", "?"), "cat": "allocator", "pid": dev, "tid": 1,
                        "ts": ts, "args": {"addr": e.get("addr"), "size": e.get("size")}})


def export(path: str) -> dict:
    """Writes the trace as Trace Event JSON; returns the document."""
    doc = to_chrome()
    with open(path, "w") as f:
        json.dump(doc, f)
    return doc
