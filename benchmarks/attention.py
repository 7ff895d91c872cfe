"""scaled_dot_product_attention on CUDA, vibetensor vs PyTorch in one run, as ratios (a benchmark, never a test).

vibetensor composes attention from two batched GEMMs around a fused scale + causal-mask softmax, or, for float16
and bfloat16, runs its flash kernels (vt::_flash_attention; opt-in with VT_FLASH_ATTENTION=1 until they have run
on a GPU, see vibetensor/torch/_sdp_backends.py); torch picks a fused kernel (flash or memory-efficient). This
measures both vibetensor paths beside torch at the shapes the training benchmarks use, forward alone and
forward + backward, in each dtype:

  minigpt   batch 64, 4 heads, context 128, head dim 64, causal (benchmarks/train_step.py's MiniGPT)
  long      batch 8, 8 heads, context 1024, head dim 64, causal (where the scores no longer fit in cache)

GPU time per call (a synchronize closes each timed loop). Run: python benchmarks/attention.py [--json out.json]
"""
import argparse
import json
import os

from _timing import median_time

SHAPES = {"minigpt": (64, 4, 128, 64), "long": (8, 8, 1024, 64)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    import torch
    import vibetensor.torch as vt

    rows = []
    print(f"{'case':<34}{'composed ms':>12}{'flash ms':>10}{'torch ms':>10}{'ratio':>8}   (best vibetensor / torch)")
    for dtype in ("float32", "bfloat16", "float16"):
        for name, shape in SHAPES.items():
            qkv_t = [torch.randn(shape, device="cuda", dtype=getattr(torch, dtype), requires_grad=True)
                     for _ in range(3)]
            qkv_v = [vt.from_dlpack(t.detach().clone()).requires_grad_() for t in qkv_t]
            go_t = torch.randn(shape, device="cuda", dtype=getattr(torch, dtype))
            go_v = vt.from_dlpack(go_t.clone())
            sdpa_v = vt.nn.functional.scaled_dot_product_attention
            sdpa_t = torch.nn.functional.scaled_dot_product_attention

            def fwd_v():
                with vt.no_grad():
                    sdpa_v(*qkv_v, is_causal=True)

            def fwd_t():
                with torch.no_grad():
                    sdpa_t(*qkv_t, is_causal=True)

            def step_v():
                sdpa_v(*qkv_v, is_causal=True).backward(go_v)

            def step_t():
                sdpa_t(*qkv_t, is_causal=True).backward(go_t)

            for what, fv, ft in (("forward", fwd_v, fwd_t), ("forward + backward", step_v, step_t)):
                times = {}
                for path in ("composed", "flash") if dtype != "float32" else ("composed",):
                    os.environ["VT_FLASH_ATTENTION"] = "1" if path == "flash" else "0"
                    times[path] = median_time(fv, args.iters, sync=vt.cuda.synchronize)
                t = median_time(ft, args.iters, sync=torch.cuda.synchronize)
                v = min(times.values())
                case = f"{name} {dtype} {what}"
                rows.append({"case": case, "shape": shape, **{f"vt_{k}_ms": x * 1e3 for k, x in times.items()},
                             "torch_ms": t * 1e3, "ratio": v / t})
                flash = f"{times['flash'] * 1e3:>10.3f}" if "flash" in times else f"{'-':>10}"
                print(f"{case:<34}{times['composed'] * 1e3:>12.3f}{flash}{t * 1e3:>10.3f}{v / t:>8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
