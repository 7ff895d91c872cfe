"""scaled_dot_product_attention, vibetensor vs PyTorch in one run, as ratios (a benchmark, never a test).

vibetensor composes attention from two batched GEMMs around a fused scale + causal-mask softmax, or runs
vt::_flash_attention (called directly here): on CUDA its flash kernels for float16 and bfloat16, and float32 with
head dims up to 64 (sdpa takes them by default since this benchmark timed them, Note [Flash kernels by default]
in vibetensor/torch/_sdp_backends.py), on the CPU its tiled forward and backward. torch picks a fused kernel
(flash or memory-efficient). This measures both vibetensor paths beside torch at the shapes the training
benchmarks use, forward alone and forward + backward, in each dtype:

  minigpt   batch 64, 4 heads, context 128, head dim 64, causal (benchmarks/train_step.py's MiniGPT)
  long      batch 8 (1 on the CPU), 8 heads, context 1024, head dim 64, causal (the scores outgrow the caches)

GPU time per call (a synchronize closes each timed loop); --device cpu times the CPU (the tiled forward and
backward against the composed path and torch). Run: python benchmarks/attention.py [--device cpu] [--json out.json]
"""
import argparse
import contextlib
import json

from _timing import median_time

SHAPES = {"cuda": {"minigpt": (64, 4, 128, 64), "long": (8, 8, 1024, 64)},
          "cpu": {"minigpt": (64, 4, 128, 64), "long": (1, 8, 1024, 64)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--iters", type=int, default=None, help="calls per timed loop (default 20 on CUDA, 2 on CPU)")
    args = ap.parse_args()
    import torch
    import vibetensor.torch as vt

    dev = args.device
    iters = args.iters or (20 if dev == "cuda" else 2)
    repeats = 7 if dev == "cuda" else 5
    sync_v = vt.cuda.synchronize if dev == "cuda" else None
    sync_t = torch.cuda.synchronize if dev == "cuda" else None
    flash_op = vt.ops.vt._flash_attention
    def math_only():
        return vt.nn.attention.sdpa_kernel(vt.nn.attention.SDPBackend.MATH)
    rows = []
    print(f"{'case':<34}{'composed ms':>12}{'flash ms':>10}{'torch ms':>10}{'ratio':>8}   (best vibetensor / torch)")
    for dtype in ("float32", "bfloat16", "float16"):
        for name, shape in SHAPES[dev].items():
            qkv_t = [torch.randn(shape, device=dev, dtype=getattr(torch, dtype), requires_grad=True)
                     for _ in range(3)]
            qkv_v = [vt.from_dlpack(t.detach().clone()).requires_grad_() for t in qkv_t]
            go_t = torch.randn(shape, device=dev, dtype=getattr(torch, dtype))
            go_v = vt.from_dlpack(go_t.clone())
            sdpa_v = vt.nn.functional.scaled_dot_product_attention
            sdpa_t = torch.nn.functional.scaled_dot_product_attention
            scale = shape[-1] ** -0.5
            # composed: sdpa with only the math backend enabled; flash: the op itself (the CUDA kernels for 16-bit and
            # float32 too, the CPU's tiled forward and backward); torch: its sdpa as it picks
            paths = {
                "composed": (lambda: sdpa_v(*qkv_v, is_causal=True), True),
                "flash": (lambda: flash_op(*qkv_v, scale, True)[0], False),
            }

            def timed(fn, backward, math):
                def call():
                    with math_only() if math else contextlib.nullcontext():
                        if backward:
                            fn().backward(go_v)
                        else:
                            with vt.no_grad():
                                fn()
                return median_time(call, iters, repeats=repeats, sync=sync_v)

            for what, bwd in (("forward", False), ("forward + backward", True)):
                times = {p: timed(fn, bwd, math) for p, (fn, math) in paths.items()}

                def torch_call():
                    if bwd:
                        sdpa_t(*qkv_t, is_causal=True).backward(go_t)
                    else:
                        with torch.no_grad():
                            sdpa_t(*qkv_t, is_causal=True)
                t = median_time(torch_call, iters, repeats=repeats, sync=sync_t)
                v = min(times.values())
                case = f"{name} {dtype} {what}"
                rows.append({"case": case, "shape": shape, **{f"vt_{k}_ms": x * 1e3 for k, x in times.items()},
                             "torch_ms": t * 1e3, "ratio": v / t})
                flash = f"{times['flash'] * 1e3:>10.3f}" if "flash" in times else f"{'-':>10}"
                print(f"{case:<34}{times['composed'] * 1e3:>12.3f}{flash}{t * 1e3:>10.3f}{v / t:>8.2f}", flush=True)
    if args.json:
        where = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
        with open(args.json, "w") as f:
            json.dump({"device": where, "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
