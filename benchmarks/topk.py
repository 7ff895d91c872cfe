"""topk and sort, vibetensor vs PyTorch in one run, as ratios (a benchmark, never a test).

Shapes where topk is used: sampling from a language model's logits (a row of a 50,257-word vocabulary, one
row and a batch of 64, k = 50), a mixture-of-experts router (4,096 tokens choosing 8 of 128 experts), large and small
k over a few long rows, and the full sort of the logits beside them. vibetensor's CUDA topk is a radix select then a
sort of the k (Note [Top-k by radix select] in core/src/ops/cuda/topk.cu), its CPU topk a partial sort of each
row. Time per call, median of repeats (a synchronize closes each timed loop on the GPU).

  python benchmarks/topk.py [--device cpu] [--json out.json]
"""
import argparse

from _timing import median_time, write_results

CASES = [  # name, shape, k (None: a full sort of the row)
    ("logits [1, 50257] k=50", (1, 50257), 50),
    ("logits [64, 50257] k=50", (64, 50257), 50),
    ("router [4096, 128] k=8", (4096, 128), 8),
    ("row [4, 1M] k=1000", (4, 1 << 20), 1000),
    ("row [1, 256K] k=64", (1, 1 << 18), 64),
    ("row [16, 1M] k=4096", (16, 1 << 20), 4096),
    ("sort logits [64, 50257]", (64, 50257), None),
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
    print(f"{'case':<28}{'vibetensor ms':>15}{'torch ms':>11}{'ratio':>8}")
    for name, shape, k in CASES:
        if not cuda and shape[0] * shape[1] > (1 << 22):
            continue  # the CPU's long rows take seconds on both sides
        t = torch.randn(shape, device=args.device)
        v = vt.from_dlpack(t.clone()) if cuda else vt.from_numpy(t.numpy().copy())
        if k is None:
            fv, ft = (lambda: v.sort(-1, descending=True)), (lambda: t.sort(-1, descending=True))
        else:
            fv, ft = (lambda: v.topk(k)), (lambda: t.topk(k))
        iters = 20 if cuda else 3
        tv, tt = median_time(fv, iters, sync=sync_v), median_time(ft, iters, sync=sync_t)
        rows.append({"case": name, "vt_ms": tv * 1e3, "torch_ms": tt * 1e3, "ratio": tv / tt})
        print(f"{name:<28}{tv * 1e3:>15.3f}{tt * 1e3:>11.3f}{tv / tt:>8.2f}")
    if args.json:
        write_results(args.json, rows, device=args.device, torch=torch.__version__)


if __name__ == "__main__":
    main()
