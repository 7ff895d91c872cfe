"""CPU float32 exact gelu and gelu_backward, vibetensor against torch, on one contiguous tensor: ms per call for
each thread count and each gelu model vibetensor can run here (Note [gelu rounds as torch's oneDNN]; "libm" is
the scalar erff/expf loop vibetensor used before). Rounds alternate the sides; medians.
Run: python benchmarks/gelu_cpu.py [--n 8388608] [--threads 1,2] [--rounds 3]"""
import argparse
import statistics

import numpy as np
import torch

import vibetensor.torch as vt
from _timing import median_time
from vibetensor._C import core as C


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8 << 20)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()
    x = (np.random.default_rng(0).standard_normal(args.n) * 2).astype(np.float32)
    g = np.random.default_rng(1).standard_normal(args.n).astype(np.float32)
    tx, tg, vx, vg = torch.from_numpy(x), torch.from_numpy(g), vt.from_numpy(x), vt.from_numpy(g)
    default = C.cpu_gelu_model()
    models = [default] + [m for m in ("libm",) if m != default]
    # torch frees a large result to the system and faults its pages in again on the next call (~20-30 ms for
    # 32 MiB here), where vibetensor's block cache reuses them: "torch out=" times its kernel alone.
    ty = torch.empty_like(tx)
    sides = {"torch": (lambda: torch.nn.functional.gelu(tx), lambda: torch.ops.aten.gelu_backward(tg, tx)),
             "torch out=": (lambda: torch._C._nn.gelu(tx, out=ty),
                            lambda: torch.ops.aten.gelu_backward.grad_input(tg, tx, grad_input=ty))}
    for m in models:
        sides[f"vt {m}"] = (m, lambda: vt.nn.functional.gelu(vx), lambda: vt.ops.vt.gelu_backward(vg, vx))
    vt.nn.functional.gelu(vx)  # vt's pool takes its size from the first parallel region: all cores, capped below
    print(f"n = {args.n}, torch {torch.__version__}, vibetensor default model {default}")
    print(f"{'threads':<8}{'side':<24}{'forward ms':>12}{'backward ms':>13}")
    for nt in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(nt)
        C.set_num_threads(nt)
        times = {k: ([], []) for k in sides}
        for _ in range(args.rounds):
            for k, v in sides.items():
                if k.startswith("vt"):
                    C.set_cpu_gelu_model(v[0])
                    v = v[1:]
                times[k][0].append(median_time(v[0], args.iters, repeats=3, warmup=1))
                times[k][1].append(median_time(v[1], args.iters, repeats=3, warmup=1))
        C.set_cpu_gelu_model(default)
        for k, (f, b) in times.items():
            print(f"{nt:<8}{k:<24}{statistics.median(f) * 1e3:>12.2f}{statistics.median(b) * 1e3:>13.2f}")


if __name__ == "__main__":
    main()
