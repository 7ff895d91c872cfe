"""Collective schedules as data: who reduces or copies which chunk from whom, step by step.

A schedule is a list of steps; a step is a list of `Transfer`s that may run at the same time; a transfer writes
one destination region with the reduction (or, with one source, a copy) of its source regions, in the order the
sources are listed. A region is `Ref(device, buffer, chunk)`: `buffer` is "in", "out" or "tmp" of that device's
rank in the collective, `chunk` None for the whole buffer or c for the c-th of `nchunks` near-equal parts
(`chunk_bounds`). Nothing here touches a GPU: `execute` runs a schedule on NumPy arrays (the CPU reference
executor used in CI), and the P2P backend runs the very same schedule with one kernel per transfer and an event
barrier between steps (Note [P2P schedule ordering] in fabric/include/vt/fabric/p2p.h).

Invariants every schedule here keeps, and `check_schedule` verifies:
  * within a step, no region is written twice and no region written is read by another transfer;
  * each output element is produced by exactly one reduction of all ranks' inputs, possibly copied afterwards,
    so every rank ends with bit-identical results.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce")
ALGORITHMS = ("one_shot", "two_shot", "ring")


@dataclass(frozen=True)
class Ref:
    rank: int
    buffer: str  # "in", "out" or "tmp"
    chunk: int | None = None


@dataclass(frozen=True)
class Transfer:
    dst: Ref
    srcs: tuple[Ref, ...]
    scale: bool = False  # the final reduction of an average applies 1/n here


@dataclass
class Schedule:
    kind: str
    algorithm: str
    nranks: int
    nchunks: int  # how buffers are cut for chunked refs
    steps: list[list[Transfer]] = field(default_factory=list)
    needs_tmp: bool = False


def chunk_bounds(numel: int, nchunks: int, c: int) -> tuple[int, int]:
    """Element range [lo, hi) of chunk c when `numel` elements are cut into `nchunks` near-equal parts."""
    return c * numel // nchunks, (c + 1) * numel // nchunks


def _all(n, buf, chunk=None):
    return tuple(Ref(j, buf, chunk) for j in range(n))


def all_reduce(n: int, algorithm: str, in_place: bool) -> Schedule:
    if algorithm == "one_shot":
        if not in_place:  # every rank reads every input once
            return Schedule("all_reduce", algorithm, n, 1, [[Transfer(Ref(r, "out"), _all(n, "in"), True) for r in range(n)]])
        # in place: reduce into tmp first, since the inputs are the outputs and others still read them
        steps = [[Transfer(Ref(r, "tmp"), _all(n, "in"), True) for r in range(n)],
                 [Transfer(Ref(r, "out"), (Ref(r, "tmp"),)) for r in range(n)]]
        return Schedule("all_reduce", algorithm, n, 1, steps, needs_tmp=True)
    if algorithm == "two_shot":
        # rank r reduces chunk r (reading chunk r of every input, writing chunk r of its output: disjoint from
        # the chunks others read, so in place is safe), then every rank copies the other chunks from their owners
        rs = [Transfer(Ref(r, "out", r), _all(n, "in", r), True) for r in range(n)]
        ag = [Transfer(Ref(r, "out", c), (Ref(c, "out", c),)) for r in range(n) for c in range(n) if c != r]
        return Schedule("all_reduce", algorithm, n, n, [rs, ag] if n > 1 else [rs])
    if algorithm == "ring":
        return _ring_all_reduce(n)
    raise ValueError(f"unknown all_reduce algorithm {algorithm!r} (one of {', '.join(ALGORITHMS)})")


def _ring_all_reduce(n: int) -> Schedule:
    """Ring over ranks 0..n-1: n-1 reduce-scatter steps (rank r adds its chunk to the partial sum its left
    neighbour holds) then n-1 all-gather steps (each rank copies the finished chunk from its left neighbour)."""
    if n == 1:
        return Schedule("all_reduce", "ring", 1, 1, [[Transfer(Ref(0, "out"), (Ref(0, "in"),), True)]])
    steps = []
    for s in range(n - 1):  # partial sums of chunk c travel r-1 -> r
        step = []
        for r in range(n):
            left = (r - 1) % n
            c = (r - s - 1) % n
            prev = Ref(left, "in", c) if s == 0 else Ref(left, "tmp", c)
            last = s == n - 2
            dst = Ref(r, "out", c) if last else Ref(r, "tmp", c)
            step.append(Transfer(dst, (prev, Ref(r, "in", c)), last))
        steps.append(step)
    # after the last reduce step rank r owns chunk (r + 1) % n in "out"; pass finished chunks to the right
    for s in range(n - 1):
        step = []
        for r in range(n):
            left = (r - 1) % n
            c = (r - s) % n
            step.append(Transfer(Ref(r, "out", c), (Ref(left, "out", c),)))
        steps.append(step)
    return Schedule("all_reduce", "ring", n, n, steps, needs_tmp=True)


def reduce_scatter(n: int) -> Schedule:
    """out[r] = reduce over ranks of chunk r of their inputs (inputs are n times the output)."""
    return Schedule("reduce_scatter", "one_shot", n, n, [[Transfer(Ref(r, "out"), _all(n, "in", r), True) for r in range(n)]])


def all_gather(n: int) -> Schedule:
    """chunk j of out[r] = in[j] (outputs are n times the input)."""
    return Schedule("all_gather", "one_shot", n, n,
                    [[Transfer(Ref(r, "out", j), (Ref(j, "in"),)) for r in range(n) for j in range(n)]])


def broadcast(n: int, root: int) -> Schedule:
    """out[r] = in[root] for r != root (the root keeps its own; in place, out[root] is in[root])."""
    return Schedule("broadcast", "one_shot", n, 1,
                    [[Transfer(Ref(r, "out"), (Ref(root, "in"),)) for r in range(n) if r != root]])


def reduce(n: int, root: int) -> Schedule:
    return Schedule("reduce", "one_shot", n, 1, [[Transfer(Ref(root, "out"), _all(n, "in"), True)]])


def check_schedule(s: Schedule, in_place: bool = False) -> None:
    """Raises ValueError when a step writes a region twice or reads a region another transfer of it writes
    (with `in_place`, "in" and "out" of a rank are one buffer)."""
    for k, step in enumerate(s.steps):
        written = [t.dst for t in step]
        if len(set(written)) != len(written):
            raise ValueError(f"{s.kind}/{s.algorithm} step {k} writes a region twice")
        for t in step:
            for src in t.srcs:
                for other in step:
                    if other is not t and _overlaps(other.dst, src, s, in_place):
                        raise ValueError(f"{s.kind}/{s.algorithm} step {k}: {src} is read while {other.dst} is written")


def _overlaps(a: Ref, b: Ref, s: Schedule, in_place: bool) -> bool:
    def storage(ref):
        return "in" if in_place and ref.buffer == "out" else ref.buffer

    if (a.rank, storage(a)) != (b.rank, storage(b)):
        return False
    if s.kind in ("reduce_scatter", "all_gather") and (a.chunk is None) != (b.chunk is None):
        return True  # whole-buffer refs of the smaller side are not chunk-comparable
    return a.chunk is None or b.chunk is None or a.chunk == b.chunk


_COMBINE = {"sum": np.add, "avg": np.add, "max": np.maximum, "min": np.minimum}  # NaN propagates


def execute(s: Schedule, inputs: list[np.ndarray], outputs: list[np.ndarray], op: str = "sum") -> None:
    """Runs `s` on NumPy arrays (the CPU reference executor): outputs[r] receives rank r's result. For an in-place
    collective pass the same arrays as inputs and outputs. Sources are combined left to right, as on the GPU."""
    if op not in _COMBINE:
        raise ValueError(f"unknown reduction op {op!r} (sum, avg, max, min)")
    bufs = {"in": [a.reshape(-1) for a in inputs], "out": [a.reshape(-1) for a in outputs]}
    if s.needs_tmp:
        bufs["tmp"] = [np.empty_like(a.reshape(-1)) for a in inputs]

    def view(ref: Ref) -> np.ndarray:
        flat = bufs[ref.buffer][ref.rank]
        if ref.chunk is None:
            return flat
        lo, hi = chunk_bounds(flat.size, s.nchunks, ref.chunk)
        return flat[lo:hi]

    for step in s.steps:
        results = []
        for t in step:  # read everything first: transfers of one step run at the same time
            acc = view(t.srcs[0]).copy()
            for src in t.srcs[1:]:
                acc = _COMBINE[op](acc, view(src)).astype(acc.dtype)
            if t.scale and op == "avg":
                acc = (acc * (1.0 / s.nranks)).astype(acc.dtype)
            results.append((t.dst, acc))
        for dst, acc in results:
            view(dst)[...] = acc
