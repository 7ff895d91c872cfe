"""CPU convolutions and the window ops on im2col (pooling, unfold), vibetensor vs PyTorch side by side in one
process, as time ratios (vt / torch, lower is better), forward alone and forward + backward. vibetensor
computes them from im2col columns and a GEMM (vibetensor/torch/nn/functional_conv.py); torch's CPU convolution
is oneDNN's direct kernel. The cases are the convolutions of small CNNs and of a ViT's patch embedding:

  conv 64-64 3x3        [8, 64, 32, 32], 64 filters 3x3, padding 1 (a ResNet stage)
  conv 128-128 3x3      [8, 128, 16, 16], 128 filters 3x3, padding 1
  conv 3-32 3x3         [64, 3, 32, 32], 32 filters 3x3, padding 1 (a CNN's stem on CIFAR-sized images)
  conv 32-64 3x3 s2     [16, 32, 16, 16], 64 filters 3x3, padding 1, stride 2 (a downsampling layer)
  patch embed 4x4 s4    [32, 3, 32, 32], 192 filters 4x4, stride 4 (benchmarks/train_step.py's ViT)
  max_pool 3x3 s2, avg_pool 2x2, unfold 3x3   on [16, 64, 32, 32]

Run: python benchmarks/cpu_conv.py [--json out.json]"""
import argparse

import numpy as np

from _timing import median_time, write_results

CONVS = [("conv 64-64 3x3", (8, 64, 32, 32), (64, 64, 3, 3), 1, 1),
         ("conv 128-128 3x3", (8, 128, 16, 16), (128, 128, 3, 3), 1, 1),
         ("conv 3-32 3x3", (64, 3, 32, 32), (32, 3, 3, 3), 1, 1),
         ("conv 32-64 3x3 s2", (16, 32, 16, 16), (64, 32, 3, 3), 1, 2),
         ("patch embed 4x4 s4", (32, 3, 32, 32), (192, 3, 4, 4), 0, 4)]


def cases(lib, rng_seed=0):
    """name -> (forward fn, forward + backward fn) for `lib` (torch or vt), on the same values for both."""
    rng = np.random.default_rng(rng_seed)
    F = lib.nn.functional
    out = {}
    for name, xs, ws, pad, stride in CONVS:
        x = lib.from_numpy(rng.standard_normal(xs).astype(np.float32))
        w = lib.from_numpy((rng.standard_normal(ws) * 0.1).astype(np.float32))
        b = lib.from_numpy(rng.standard_normal(ws[0]).astype(np.float32))
        xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()

        def both(x=x, w=w, b=b, xg=xg, wg=wg, pad=pad, stride=stride):
            return (lambda: F.conv2d(x, w, b, padding=pad, stride=stride),
                    lambda: F.conv2d(xg, wg, b, padding=pad, stride=stride).sum().backward())
        out[name] = both()
    img = lib.from_numpy(rng.standard_normal((16, 64, 32, 32)).astype(np.float32))
    imgg = img.clone().requires_grad_()
    out["max_pool 3x3 s2"] = (lambda: F.max_pool2d(img, 3, 2, 1),
                              lambda: F.max_pool2d(imgg, 3, 2, 1).sum().backward())
    out["avg_pool 2x2"] = (lambda: F.avg_pool2d(img, 2), lambda: F.avg_pool2d(imgg, 2).sum().backward())
    out["unfold 3x3"] = (lambda: F.unfold(img, 3, padding=1), lambda: F.unfold(imgg, 3, padding=1).sum().backward())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    import torch

    import vibetensor.torch as vt

    ours, theirs = cases(vt), cases(torch)
    print(f"# vibetensor {vt.get_num_threads()} threads; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'case':<22}{'fwd vt ms':>10}{'torch ms':>10}{'ratio':>7}{'fwd+bwd vt':>12}{'torch ms':>10}{'ratio':>7}")
    rows = []
    for name in ours:
        times = [median_time(fn, args.iters, repeats=5) * 1e3 for fn in (*ours[name], *theirs[name])]
        row = {"case": name, "fwd_vt_ms": times[0], "fwd_torch_ms": times[2], "fwd_ratio": times[0] / times[2],
               "train_vt_ms": times[1], "train_torch_ms": times[3], "train_ratio": times[1] / times[3]}
        rows.append(row)
        print(f"{name:<22}{times[0]:>10.3f}{times[2]:>10.3f}{row['fwd_ratio']:>7.2f}"
              f"{times[1]:>12.3f}{times[3]:>10.3f}{row['train_ratio']:>7.2f}")
    if args.json:
        write_results(args.json, rows, torch=torch.__version__, threads=vt.get_num_threads())


if __name__ == "__main__":
    main()
