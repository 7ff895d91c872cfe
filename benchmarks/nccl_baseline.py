"""NCCL allreduce baseline in one process over all visible GPUs, in nccl-tests' format and conventions.

This is the reference the ring allreduce plugin is measured against (goal there: busbw >= 1.0x). One process drives
every GPU through torch.cuda.nccl.all_reduce on a list of per-GPU tensors. Conventions as nccl-tests:
  algbw = size / time; busbw = algbw * 2 (n - 1) / n; time in microseconds per operation;
  #wrong counts elements that differ from the exact expected sum. Inputs depend on the rank and the index, as
  nccl-tests' (rank r holds r + 1 + (i % 7) at index i), so a chunk reduced or gathered into the wrong place
  counts; every value and the sum n (n + 1) / 2 + n (i % 7) stay small integers, exact in every dtype tested.
Modes: out-of-place and in-place, both timed "pipelined" (iters back to back, then one synchronize of every
GPU) like nccl-tests' default. NVLink multicast stays off (NCCL_NVLS_ENABLE=0 ...), as this workplace asks.
Run: python benchmarks/nccl_baseline.py [--min 8] [--max 1G] [--dtypes float32,bfloat16] [--json F] [--csv F]
"""
import argparse
import csv
import json
import os
import time

for _k, _v in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"), ("NVSHMEM_DISABLE_NVLS", "1")):
    os.environ[_k] = _v  # before torch/NCCL initialise


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().rstrip("B")
    return int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t)


def sizes(lo: int, hi: int):
    s = lo
    while s <= hi:
        yield s
        s *= 2


def run_one(torch, nccl, n, size, dtype, iters, warmup, in_place):
    elem = torch.tensor([], dtype=dtype).element_size()
    count = max(size // elem, 1)
    pattern = [(torch.arange(count, device=f"cuda:{r}") % 7).to(dtype) for r in range(n)]

    def fill(t, r):  # rank- and index-dependent, exactly representable
        t.copy_(pattern[r] + (r + 1))

    ins = [torch.empty((count,), dtype=dtype, device=f"cuda:{r}") for r in range(n)]
    for r, t in enumerate(ins):
        fill(t, r)
    outs = ins if in_place else [torch.empty_like(t) for t in ins]

    def op():
        nccl.all_reduce(ins, outputs=None if in_place else outs)

    for _ in range(warmup):
        if in_place:
            for r, t in enumerate(ins):
                fill(t, r)
        op()
    for r in range(n):
        torch.cuda.synchronize(r)
    t0 = time.perf_counter()
    for _ in range(iters):
        op()
    for r in range(n):
        torch.cuda.synchronize(r)
    t_us = (time.perf_counter() - t0) / iters * 1e6
    # Check one fresh op exactly (in place, the timed loop kept summing; refill first).
    for r, t in enumerate(ins):
        fill(t, r)
    op()
    wrong = sum(int((o != (pattern[r] * n + n * (n + 1) // 2).to(dtype)).sum().item()) for r, o in enumerate(outs))
    algbw = size / t_us / 1e3  # GB/s
    return {"size": count * elem, "count": count, "type": str(dtype).replace("torch.", ""), "redop": "sum",
            "inplace": in_place, "time_us": t_us, "algbw": algbw, "busbw": algbw * 2 * (n - 1) / n, "wrong": wrong}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--min", default="8")
    ap.add_argument("--max", default="1G")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--csv")
    args = ap.parse_args()
    import torch
    import torch.cuda.nccl as nccl

    n = torch.cuda.device_count()
    if n < 2:
        print(f"skipped: needs 2 GPUs, found {n}")
        return
    v = nccl.version()
    version = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    print(f"# NCCL {version}, {n} x {torch.cuda.get_device_name(0)}, "
          f"one process; busbw = algbw * 2(n-1)/n")
    print(f"{'size':>12} {'count':>12} {'type':>9} {'redop':>6} | {'oop time':>9} {'algbw':>7} {'busbw':>7} "
          f"{'#wrong':>6} | {'ip time':>9} {'algbw':>7} {'busbw':>7} {'#wrong':>6}")
    rows = []
    for dt_name in args.dtypes.split(","):
        dtype = getattr(torch, dt_name)
        for size in sizes(parse_size(args.min), parse_size(args.max)):
            iters = args.iters if size < (64 << 20) else max(5, args.iters // 4)
            oop = run_one(torch, nccl, n, size, dtype, iters, args.warmup, False)
            ip = run_one(torch, nccl, n, size, dtype, iters, args.warmup, True)
            rows += [oop, ip]
            print(f"{oop['size']:>12} {oop['count']:>12} {oop['type']:>9} {'sum':>6} | {oop['time_us']:>9.1f} "
                  f"{oop['algbw']:>7.2f} {oop['busbw']:>7.2f} {oop['wrong']:>6} | {ip['time_us']:>9.1f} "
                  f"{ip['algbw']:>7.2f} {ip['busbw']:>7.2f} {ip['wrong']:>6}")
    big = [r for r in rows if r["size"] >= (256 << 20)]
    if big:
        print(f"# avg busbw for sizes >= 256 MiB: {sum(r['busbw'] for r in big) / len(big):.2f} GB/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpus": n, "gpu": torch.cuda.get_device_name(0), "rows": rows}, f, indent=2)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
