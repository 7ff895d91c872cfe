"""F.cross_entropy, vibetensor vs PyTorch in one run, as ratios (a benchmark, never a test).

Class-index targets at the shapes language models and classifiers meet: a GPT-2 vocabulary over 8 x 1024 tokens, a
Llama vocabulary over 4 x 1024, MiniGPT's over its batch, an ImageNet head, and a tiny one (launch-bound). Forward
alone and forward + backward (the loss's gradient into the logits), float32 and bfloat16; on CUDA vibetensor runs
its fused kernels (core/src/ops/cuda/cross_entropy.cu), torch its log_softmax + nll_loss. Time per call, median of
repeats, sides alternating (paired_times); a synchronize closes each timed loop on the GPU.

  python benchmarks/cross_entropy.py [--device cpu] [--json out.json]
"""
import argparse

import numpy as np
from _timing import paired_times, write_results

CASES = [  # name, rows, classes
    ("GPT-2 vocab [8192, 50257]", 8192, 50257),
    ("Llama vocab [4096, 32000]", 4096, 32000),
    ("MiniGPT [8192, 65]", 8192, 65),
    ("ImageNet head [256, 1000]", 256, 1000),
    ("tiny [4, 10]", 4, 10),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch
    import vibetensor.torch as vt

    cuda = args.device == "cuda"
    sync_v = vt.cuda.synchronize if cuda else None
    sync_t = torch.cuda.synchronize if cuda else None
    rows = []
    print(f"{'case':<30}{'dtype':<10}{'pass':<10}{'vibetensor ms':>15}{'torch ms':>11}{'ratio':>8}")
    for name, m, c in CASES:
        if not cuda and m * c > (1 << 24):
            continue
        rng = np.random.default_rng(0)
        x = rng.standard_normal((m, c), dtype=np.float32)
        t = rng.integers(0, c, size=m)
        for dtype in ("float32", "bfloat16"):
            xv = vt.from_numpy(x).to(args.device).to(getattr(vt, dtype)).requires_grad_(True)
            xt = torch.from_numpy(x).to(args.device).to(getattr(torch, dtype)).requires_grad_(True)
            tv, tt = vt.from_numpy(t).to(args.device), torch.from_numpy(t).to(args.device)
            iters = 20 if m * c > 1e7 else 200

            def fwd_v():
                with vt.no_grad():
                    vt.nn.functional.cross_entropy(xv, tv)

            def fwd_t():
                with torch.no_grad():
                    torch.nn.functional.cross_entropy(xt, tt)

            def both_v():
                vt.nn.functional.cross_entropy(xv, tv).backward()
                xv.grad = None

            def both_t():
                torch.nn.functional.cross_entropy(xt, tt).backward()
                xt.grad = None

            for label, fv, ft in (("forward", fwd_v, fwd_t), ("fwd+bwd", both_v, both_t)):
                tv_s, tt_s = paired_times(fv, ft, iters, sync_a=sync_v, sync_b=sync_t)
                rows.append({"case": name, "dtype": dtype, "pass": label, "vt_ms": tv_s * 1e3, "torch_ms": tt_s * 1e3,
                             "ratio": tv_s / tt_s})
                print(f"{name:<30}{dtype:<10}{label:<10}{tv_s * 1e3:>15.3f}{tt_s * 1e3:>11.3f}{tv_s / tt_s:>8.2f}")
    if args.json:
        write_results(args.json, rows, device=args.device, torch=torch.__version__)


if __name__ == "__main__":
    main()
