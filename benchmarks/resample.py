"""F.interpolate and F.pad, vibetensor vs PyTorch in one run, as ratios (a benchmark, never a test).

The resizes vision models make: a U-Net decoder's 2x upsampling (nearest and bilinear) at three depths, a
feature-pyramid's bilinear resize to a fixed size, a bicubic image resize, a 3-D trilinear upsample, an
antialiased thumbnail, and a tiny launch-bound one; and the pads of convolutional models (a ResNet stage's zero
pad, a reflect-padded generator's, a replicate-padded 1-D signal, a tiny one). Forward alone and forward +
backward (the gradient into the input), float32 and bfloat16; vibetensor runs one _resample kernel per call
(core/src/ops/cuda/resample.cu) and its atomic adjoint, torch its upsample and padding kernels. Time per call, median of repeats, sides alternating
(paired_times); a synchronize closes each timed loop on the GPU.

  python benchmarks/resample.py [--device cpu] [--json out.json]
"""
import argparse

import numpy as np
from _timing import paired_times, write_results

CASES = [  # name, input shape, interpolate kwargs (F.pad's arguments under "pad")
    ("U-Net x2 nearest [8,256,32,32]", (8, 256, 32, 32), dict(scale_factor=2, mode="nearest")),
    ("U-Net x2 bilinear [8,128,64,64]", (8, 128, 64, 64), dict(scale_factor=2, mode="bilinear")),
    ("U-Net x2 bilinear [8,64,128,128]", (8, 64, 128, 128), dict(scale_factor=2, mode="bilinear")),
    ("FPN to 50x68 [2,256,25,34]", (2, 256, 25, 34), dict(size=(50, 68), mode="bilinear", align_corners=False)),
    ("bicubic 224 [16,3,256,256]", (16, 3, 256, 256), dict(size=(224, 224), mode="bicubic")),
    ("trilinear x2 [2,32,16,16,16]", (2, 32, 16, 16, 16), dict(scale_factor=2, mode="trilinear")),
    ("antialias 64 [16,3,256,256]", (16, 3, 256, 256), dict(size=(64, 64), mode="bilinear", antialias=True)),
    ("tiny [1,1,4,4] x2", (1, 1, 4, 4), dict(scale_factor=2, mode="bilinear")),
    ("pad zeros [8,64,56,56]", (8, 64, 56, 56), dict(pad=(1, 1, 1, 1))),
    ("pad reflect [4,64,128,128]", (4, 64, 128, 128), dict(pad=(3, 3, 3, 3), mode="reflect")),
    ("pad replicate [16,256,1000]", (16, 256, 1000), dict(pad=(3, 3), mode="replicate")),
    ("pad tiny [1,1,4,4]", (1, 1, 4, 4), dict(pad=(1, 1, 1, 1), mode="reflect")),
]


def _op(m, kw):
    """The case's call of module m's F.interpolate, or of F.pad where kw has "pad"."""
    F = m.nn.functional
    if "pad" in kw:
        return lambda x: F.pad(x, **kw)
    return lambda x: F.interpolate(x, **kw)


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
    print(f"{'case':<34}{'dtype':<10}{'pass':<10}{'vibetensor ms':>15}{'torch ms':>11}{'ratio':>8}")
    for name, shape, kw in CASES:
        size = int(np.prod(shape))
        if not cuda and size > (1 << 22):
            continue
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        for dtype in ("float32", "bfloat16"):
            if not cuda and dtype == "bfloat16" and kw.get("antialias"):
                continue  # torch's CPU antialiasing has no 16-bit kernel
            xv = vt.from_numpy(x).to(args.device).to(getattr(vt, dtype)).requires_grad_(True)
            xt = torch.from_numpy(x).to(args.device).to(getattr(torch, dtype)).requires_grad_(True)
            iters = 200 if size < (1 << 16) else 20

            op_v, op_t = _op(vt, kw), _op(torch, kw)

            def fwd_v():
                with vt.no_grad():
                    op_v(xv)

            def fwd_t():
                with torch.no_grad():
                    op_t(xt)

            def both_v():
                op_v(xv).sum().backward()
                xv.grad = None

            def both_t():
                op_t(xt).sum().backward()
                xt.grad = None

            for label, fv, ft in (("forward", fwd_v, fwd_t), ("fwd+bwd", both_v, both_t)):
                tv_s, tt_s = paired_times(fv, ft, iters, sync_a=sync_v, sync_b=sync_t)
                rows.append({"case": name, "dtype": dtype, "pass": label, "vt_ms": tv_s * 1e3, "torch_ms": tt_s * 1e3,
                             "ratio": tv_s / tt_s})
                print(f"{name:<34}{dtype:<10}{label:<10}{tv_s * 1e3:>15.3f}{tt_s * 1e3:>11.3f}{tv_s / tt_s:>8.2f}")
    if args.json:
        write_results(args.json, rows, device=args.device, torch=torch.__version__)


if __name__ == "__main__":
    main()
