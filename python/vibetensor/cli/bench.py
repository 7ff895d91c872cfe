"""vt-fabric bench: collectives benchmarked as nccl-tests does, with every backend of this machine side by side.

    vt-fabric bench allreduce -b 8 -e 128M -f 2 -n 20 -w 5 -d float32 -o sum
    VT_EMULATE_DEVICES=8 vt-fabric bench allreduce --backend p2p --mode events --json r.json --plot r.png

Conventions are nccl-tests': size is the bytes of one device's input (all_reduce) or output (reduce_scatter) or
input (all_gather), count its elements; algbw = size / time; busbw = algbw x 2(n-1)/n for all_reduce and
x (n-1)/n for reduce_scatter and all_gather; #wrong counts elements that differ from the exact expected result,
with inputs that depend on the device and the index (rank r holds r + 1 + (i % 7) at index i), so a misplaced chunk
counts. Out-of-place and in-place (all_reduce) are timed separately. Timing modes: "pipelined" (iterations back to
back, host-timed over the whole loop, as nccl-tests), "events" (CUDA events around each iteration: p50 and p99),
"graph" (the iterations captured in a CUDA graph and replayed; backends that cannot be captured print n/a).
The header says which GPUs, driver, CUDA and NCCL versions, and whether the devices are emulated; NVLink
multicast stays off (NCCL_NVLS_ENABLE=0).
"""
from __future__ import annotations

import json
import os
import statistics
import time

KINDS = {"allreduce": "all_reduce", "reduce_scatter": "reduce_scatter", "all_gather": "all_gather"}
DTYPES = ("float32", "bfloat16", "float16", "float64")


def parse_size(text: str) -> int:
    t = str(text).strip().upper().rstrip("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if t and t[-1] in units and t[:-1].isdigit():
        return int(t[:-1]) * units[t[-1]]
    if t.isdigit():
        return int(t)
    raise ValueError(f"bad size {text!r}: use bytes or K/M/G (e.g. 8, 64K, 128M)")


def sizes(lo: int, hi: int, factor: int) -> list[int]:
    if lo <= 0 or hi < lo or factor < 2:
        raise ValueError(f"need 0 < minbytes <= maxbytes and stepfactor >= 2, got {lo}, {hi}, {factor}")
    out, s = [], lo
    while s <= hi:
        out.append(s)
        s *= factor
    return out


def bus_factor(kind: str, n: int) -> float:
    return 2 * (n - 1) / n if kind == "all_reduce" else (n - 1) / n


def expected(kind: str, op: str, n: int, count: int, rank: int):
    """The exact result rank `rank` must hold (float64 NumPy), for inputs r + 1 + (i % 7)."""
    import numpy as np

    def inp(r, m):
        return r + 1 + (np.arange(m) % 7).astype(np.float64)

    if kind == "all_gather":
        return np.concatenate([inp(r, count) for r in range(n)])
    full = np.stack([inp(r, count * (n if kind == "reduce_scatter" else 1)) for r in range(n)])
    red = {"sum": full.sum(0), "avg": full.mean(0), "max": full.max(0), "min": full.min(0)}[op]
    return red[rank * count:(rank + 1) * count] if kind == "reduce_scatter" else red


def environment(n: int) -> list[str]:
    import vibetensor.cuda as vcuda
    from vibetensor.fabric import nccl
    from vibetensor.topology import discover

    props = [vcuda.get_device_properties(d) for d in range(n)]
    lines = [f"# {n} device(s): " + ", ".join(sorted({p.name for p in props}))]
    if vcuda.is_emulated():
        lines.append(f"# EMULATED: {vcuda.emulation_label()} (bus bandwidth is the one GPU's memory traffic)")
    rt = __import__("vibetensor")._C.topology.runtime_info()
    lines.append(f"# driver CUDA {discover._version_str(rt['driver_version'])}, runtime "
                 f"{discover._version_str(rt['runtime_version'])}, NCCL {nccl.version() or 'not available'}, "
                 f"NVLS {'off' if os.environ.get('NCCL_NVLS_ENABLE') == '0' else 'default'}")
    return lines


def _vt_dtype(name):
    import vibetensor.torch as vt

    return getattr(vt, name)


def make_inputs(kind, n, count, dtype):
    import vibetensor.torch as vt

    m = count * (n if kind == "reduce_scatter" else 1)
    return [((vt.arange(m, device=f"cuda:{r}") % 7) + (r + 1)).to(_vt_dtype(dtype)) for r in range(n)]


def run_case(kind, backend, n, count, dtype, op, iters, warmup, mode, in_place):
    """One row: {'time_us', 'algbw', 'busbw', 'wrong', 'p99_us'?} or None when the case cannot run."""
    import numpy as np

    import vibetensor.torch as vt
    from vibetensor import fabric

    ins = make_inputs(kind, n, count, dtype)
    out_numel = count * n if kind == "all_gather" else count
    outs = None if in_place else [vt.empty(out_numel, dtype=_vt_dtype(dtype), device=f"cuda:{r}") for r in range(n)]
    backend, _, algorithm = backend.partition("/")  # "ring/two_shot": a backend and its all_reduce algorithm

    def call():
        if kind == "all_reduce":
            fabric.all_reduce(ins, op, out=outs, backend=backend, algorithm=algorithm or "auto")
        elif kind == "reduce_scatter":
            fabric.reduce_scatter(ins, outs, op, backend=backend)
        else:
            fabric.all_gather(ins, outs, backend=backend)

    def sync():
        for d in range(n):
            vt.cuda.synchronize(d)

    for _ in range(warmup):
        call()
    sync()
    p99 = None
    if mode == "pipelined":
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        sync()
        t_us = (time.perf_counter() - t0) / iters * 1e6
    elif mode == "events":
        samples = []
        for _ in range(iters):
            start, end = vt.cuda.Event(enable_timing=True, device=0), vt.cuda.Event(enable_timing=True, device=0)
            start.record(vt.cuda.current_stream(0))
            call()
            for d in range(1, n):  # the iteration ends when every device is done
                vt.cuda.current_stream(0).wait_stream(vt.cuda.current_stream(d))
            end.record(vt.cuda.current_stream(0))
            end.synchronize()
            samples.append(start.elapsed_time(end) * 1e3)
        t_us = statistics.median(samples)
        p99 = float(np.percentile(samples, 99))
    else:  # graph
        try:
            g = vt.cuda.CUDAGraph()
            with fabric.graphs.capture(g, range(n)):  # every device's stream joins the one capture
                for _ in range(iters):
                    call()
        except Exception:
            return None  # this backend cannot be captured
        sync()
        t0 = time.perf_counter()
        g.replay()
        sync()
        t_us = (time.perf_counter() - t0) / iters * 1e6
    # verify a fresh run exactly (timed loops re-reduced in place)
    ins[:] = make_inputs(kind, n, count, dtype)
    if in_place:
        outs_check = ins
    else:
        outs_check = outs
    call()
    sync()
    res = outs_check if outs_check is not None else ins
    wrong = 0
    for r in range(n):
        exp = expected(kind, op, n, count, r)
        got = res[r].double().cpu().numpy()
        tol = 0 if dtype in ("float32", "float64") or op != "avg" else 1e-2
        wrong += int(np.sum(~np.isclose(got, exp, rtol=tol, atol=tol)))
    size = count * _elem(dtype) * (n if kind == "reduce_scatter" else 1) if kind != "all_gather" else count * _elem(dtype)
    algbw = size / t_us / 1e3
    return {"time_us": t_us, "algbw": algbw, "busbw": algbw * bus_factor(kind, n), "wrong": wrong, "p99_us": p99}


def _elem(dtype):
    return {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2}[dtype]


def bench(kind, backends, minbytes, maxbytes, factor, iters, warmup, dtype, op, mode, progress=None):
    import vibetensor.cuda as vcuda

    n = vcuda.device_count()
    rows = []
    cases = [(b, s) for b in backends for s in sizes(minbytes, maxbytes, factor)]
    for k, (backend, size) in enumerate(cases):
        count = max(size // _elem(dtype) // (n if kind == "reduce_scatter" else 1), 1)
        if kind == "all_reduce" and op == "avg":
            pass
        oop = run_case(kind, backend, n, count, dtype, op, iters, warmup, mode, False)
        ip = run_case(kind, backend, n, count, dtype, op, iters, warmup, mode, True) if kind == "all_reduce" else None
        rows.append({"backend": backend, "size": size, "count": count, "type": dtype, "redop": op,
                     "out_of_place": oop, "in_place": ip})
        if progress:
            progress(k + 1, len(cases), f"{backend} {size} B")
    return rows


def format_rows(rows) -> list[str]:
    def part(r):
        if r is None:
            return f"{'n/a':>10} {'':>7} {'':>7} {'':>6}"
        return f"{r['time_us']:>10.1f} {r['algbw']:>7.2f} {r['busbw']:>7.2f} {r['wrong']:>6}"

    head = (f"{'backend':>8} {'size':>12} {'count':>12} {'type':>9} {'redop':>6} | {'time(us)':>10} {'algbw':>7} "
            f"{'busbw':>7} {'#wrong':>6} | {'time(us)':>10} {'algbw':>7} {'busbw':>7} {'#wrong':>6}")
    lines = [f"{'':>51}   out-of-place{'':>24}   in-place", head]
    for r in rows:
        lines.append(f"{r['backend']:>8} {r['size']:>12} {r['count']:>12} {r['type']:>9} {r['redop']:>6} | "
                     f"{part(r['out_of_place'])} | {part(r['in_place'])}")
    return lines


def write_outputs(rows, meta, json_path=None, csv_path=None, plot_path=None):
    if json_path:
        with open(json_path, "w") as f:
            json.dump({**meta, "rows": rows}, f, indent=2)
    if csv_path:
        import csv

        with open(csv_path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["backend", "size", "count", "type", "redop", "placement", "time_us", "algbw", "busbw",
                        "wrong", "p99_us"])
            for r in rows:
                for place in ("out_of_place", "in_place"):
                    c = r[place]
                    if c is not None:
                        w.writerow([r["backend"], r["size"], r["count"], r["type"], r["redop"], place, c["time_us"],
                                    c["algbw"], c["busbw"], c["wrong"], c["p99_us"]])
    if plot_path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for backend in sorted({r["backend"] for r in rows}):
            pts = [(r["size"], r["out_of_place"]["busbw"]) for r in rows
                   if r["backend"] == backend and r["out_of_place"]]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=backend)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bytes per device")
        ax.set_ylabel("busbw (GB/s)")
        ax.set_title(meta.get("title", "collective bus bandwidth"))
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot_path, dpi=120)
        plt.close(fig)


def tune(n, dtype="float32", iters=20, warmup=5, maxbytes=256 << 20, progress=None):
    """Times the ring backend's algorithms over sizes (pipelined, out of place) and saves the crossover table
    "auto" reads from then on (vibetensor.fabric.ring.crossover). Returns (path, measured)."""
    from vibetensor.fabric import ring

    algs = ("one_shot", "two_shot", "ring")
    grid = sizes(1 << 10, maxbytes, 4)
    measured = {}
    for k, size in enumerate(grid):
        count = max(size // _elem(dtype), 1)
        measured[size] = {a: run_case("all_reduce", f"ring/{a}", n, count, dtype, "sum", iters, warmup, "pipelined",
                                      False)["time_us"] for a in algs}
        if progress:
            progress(k + 1, len(grid), f"tuning {size} B")
    best = [(size, min(t, key=t.get)) for size, t in measured.items()]
    rules = []
    for size, alg in best:  # merge runs of the same winner; the last rule covers every larger size
        if rules and rules[-1][1] == alg:
            rules[-1][0] = size
        else:
            rules.append([size, alg])
    rules[-1][0] = None
    return ring.save_crossover(n, rules, {str(k): v for k, v in measured.items()}), measured


def check_random(n, runs, backend="ring", seed=0, progress=None):
    """#wrong over `runs` randomized all_reduce cases (algorithm, dtype, op, placement, size incl. 0, 1, odd and
    unaligned offsets) against a float64 reference; returns (cases, wrong, first failures)."""
    import random

    import numpy as np

    import vibetensor.torch as vt
    from vibetensor import fabric

    rng = random.Random(seed)
    tols = {"float32": 1e-5, "bfloat16": 2e-2, "float16": 4e-3}
    wrong, failures = 0, []
    for case in range(runs):
        dtype, op = rng.choice(list(tols)), rng.choice(["sum", "avg", "max", "min"])
        alg = rng.choice(["auto", "one_shot", "two_shot", "ring"])
        numel = rng.choice([0, 1, 2, 3, 7, 8, 9, 100, 1023, 4096, 65537]) if rng.random() < .5 else rng.randint(1, 1 << 20)
        offset, in_place = rng.choice([0, 0, 0, 1, 5]), rng.random() < .5
        ints = np.random.default_rng(case).integers(-8, 9, size=(n, numel)).astype(np.float64)
        xs = [vt.from_numpy(np.concatenate([np.zeros(offset), ints[r]])).to(getattr(vt, dtype)).to(f"cuda:{r}")[offset:]
              for r in range(n)]
        outs = None if in_place else [vt.empty_like(x) for x in xs]
        fabric.all_reduce(xs, op, out=outs, backend=backend, algorithm=alg)
        ref = {"sum": ints.sum(0), "avg": ints.mean(0), "max": ints.max(0), "min": ints.min(0)}[op]
        tol = tols[dtype] * (1 + np.abs(ints).sum(0))
        bad = sum(int(np.sum(np.abs(r.double().cpu().numpy() - ref) > tol)) for r in (outs or xs))
        if bad:
            wrong += bad
            if len(failures) < 5:
                failures.append(dict(case=case, dtype=dtype, op=op, alg=alg, numel=numel, offset=offset,
                                     in_place=in_place, wrong=bad))
        if progress and (case + 1) % 100 == 0:
            progress(case + 1, runs, f"case {case + 1}")
    return runs, wrong, failures


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ and "RANK" in os.environ


def distributed_bench(kind, minbytes, maxbytes, factor, iters, warmup, dtype, op, emit=print):
    """One process per GPU (as torchrun starts them), NCCL between processes - so it also measures beyond one
    machine. torch.distributed (gloo, over the launcher's store) only bootstraps: it hands rank 0's NCCL id to
    every rank and gathers times and #wrong; the data path is NCCL on vibetensor tensors. Times are the slowest
    rank's; rank 0 prints."""
    import numpy as np
    import torch
    import torch.distributed as dist

    import vibetensor.torch as vt
    from vibetensor.fabric import nccl

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    dist.init_process_group("gloo")
    try:
        box = [nccl.unique_id() if rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        comm = nccl.init_rank(world, rank, box[0], local)
        dev = f"cuda:{local}"
        rows = []
        if rank == 0:
            for line in environment(1)[:1] + [f"# {world} ranks (torchrun), NCCL {nccl.version()}, {kind}"]:
                emit(line)
        for size in sizes(minbytes, maxbytes, factor):
            count = max(size // _elem(dtype) // (world if kind == "reduce_scatter" else 1), 1)
            m = count * (world if kind == "reduce_scatter" else 1)
            x = ((vt.arange(m, device=dev) % 7) + (rank + 1)).to(_vt_dtype(dtype))
            out = vt.empty(count * world if kind == "all_gather" else count, dtype=_vt_dtype(dtype), device=dev)
            for _ in range(warmup):
                nccl.run_rank(kind, comm, x, out, op)
            vt.cuda.synchronize(local)
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(iters):
                nccl.run_rank(kind, comm, x, out, op)
            vt.cuda.synchronize(local)
            t = torch.tensor([(time.perf_counter() - t0) / iters * 1e6])
            x = ((vt.arange(m, device=dev) % 7) + (rank + 1)).to(_vt_dtype(dtype))
            nccl.run_rank(kind, comm, x, out, op)
            vt.cuda.synchronize(local)
            exp = expected(kind, op, world, count, rank)
            tol = 0 if dtype in ("float32", "float64") or op != "avg" else 1e-2
            wrong = torch.tensor([int(np.sum(~np.isclose(out.double().cpu().numpy(), exp, rtol=tol, atol=tol)))])
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            dist.all_reduce(wrong)
            algbw = size / t.item() / 1e3
            row = {"backend": "nccl", "size": size, "count": count, "type": dtype, "redop": op,
                   "out_of_place": {"time_us": t.item(), "algbw": algbw, "busbw": algbw * bus_factor(kind, world),
                                    "wrong": int(wrong.item()), "p99_us": None}, "in_place": None}
            rows.append(row)
        if rank == 0:
            for line in format_rows(rows):
                emit(line)
        return rows if rank == 0 else None
    finally:
        dist.destroy_process_group()
