"""Optimizer step and gradient clipping time alone, vibetensor vs PyTorch eager on the same device in one run, as
ratios (vt / torch).

The parameters are MiniGPT's (examples/minigpt.py: 6 layers, d=256, 4 heads, context 128, vocab 96: ~80
tensors from 96 to 262k elements), with fixed random gradients; a step is opt.step() alone, timed after warm-up
with a device synchronize closing each timed loop. Rows:
  adamw fused      vt's default (one multi-tensor kernel per step)  vs torch fused=True
  adamw per-param  vt fused=False (~11 ops per parameter)             vs torch's default (foreach on CUDA,
                                                                        a per-parameter loop on the CPU)
  sgd ...          the same pairs for SGD(momentum=0.9)
  clip foreach     clip_grad_norm_(max_norm=1) with vt's default (a vt._foreach_norm and a vt._foreach_mul_
                   per (device, dtype) group)                       vs torch foreach=True
  clip per-grad    foreach=False on both (a norm and a multiply per gradient)
and the same six "(host)" with 4-element parameters: the step's host cost alone. --only keeps the cases whose
name contains the text (e.g. --only clip).
Run: python benchmarks/optim_step.py [--device cuda] [--iters 50] [--only clip] [--json out.json]"""
import argparse

from _timing import median_time, write_results
from train_step import example_class

CASES = [  # name, optimizer, kwargs, vt keywords, torch keywords
    ("adamw fused", "AdamW", dict(lr=1e-4), dict(), dict(fused=True)),
    ("adamw per-param", "AdamW", dict(lr=1e-4), dict(fused=False), dict()),
    ("sgd fused", "SGD", dict(lr=1e-2, momentum=0.9), dict(), dict(fused=True)),
    ("sgd per-param", "SGD", dict(lr=1e-2, momentum=0.9), dict(fused=False), dict()),
    ("clip foreach", "clip", dict(max_norm=1.0), dict(), dict(foreach=True)),
    ("clip per-grad", "clip", dict(max_norm=1.0), dict(foreach=False), dict(foreach=False)),
]


def make_step(m, device, opt_name, kwargs, host_only=False):
    """opt.step (or clip_grad_norm_, for "clip") over MiniGPT's parameters; host_only: as many 4-element
    parameters instead, so the time is the step's host cost (Python, dispatch, launches), which is what bounds a
    small model's step on a GPU."""
    model = example_class("minigpt", m)(96, 256, 4, 6, 128).to(device)
    params = list(model.parameters())
    if host_only:
        params = [m.zeros(4, device=device) for _ in params]
    for p in params:
        p.grad = m.randn(*p.shape, device=device) * 1e-2
    n, numel = len(params), sum(p.numel() for p in params)
    if opt_name == "clip":  # the gradients shrink to norm 1 on the first call; later calls scale by ~1
        return (lambda: m.nn.utils.clip_grad_norm_(params, **kwargs)), n, numel
    opt = getattr(m.optim, opt_name)(params, **kwargs)
    return opt.step, n, numel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--only", default="")
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch
    import vibetensor.torch as vt

    cuda = args.device.startswith("cuda")
    sync_t = torch.cuda.synchronize if cuda else None
    sync_v = vt.cuda.synchronize if cuda else None
    rows = []
    cases = [(c[0], host_only) + c[1:] for host_only in (False, True) for c in CASES]
    for name, host_only, opt_name, kwargs, vt_kw, torch_kw in cases:
        name += " (host)" if host_only else ""
        if args.only not in name:
            continue
        step_v, n, numel = make_step(vt, args.device, opt_name, dict(kwargs, **vt_kw), host_only)
        step_t, _, _ = make_step(torch, args.device, opt_name, dict(kwargs, **torch_kw), host_only)
        if not rows:
            print(f"{n} parameters, {numel / 1e6:.2f}M elements, device {args.device}")
            print(f"{'case':<25}{'vibetensor ms':>15}{'torch ms':>12}{'ratio':>8}")
        tv = median_time(step_v, args.iters, repeats=5, sync=sync_v)
        tt = median_time(step_t, args.iters, repeats=5, sync=sync_t)
        rows.append({"case": name, "vt_ms": tv * 1e3, "torch_ms": tt * 1e3, "ratio": tv / tt})
        print(f"{name:<25}{tv * 1e3:>15.3f}{tt * 1e3:>12.3f}{tv / tt:>8.2f}")
    if args.json:
        write_results(args.json, rows, device=args.device, torch=torch.__version__)


if __name__ == "__main__":
    main()
