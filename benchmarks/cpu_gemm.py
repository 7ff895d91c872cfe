"""CPU matrix product, vibetensor vs PyTorch side by side in one process: GFLOP/s of each and the time ratio
(vt / torch, lower is better) for square products and the GEMMs of an MLP 1024-4096-1024 training step at
batch 256 and of MiniGPT's layers (benchmarks/train_step.py): forward x @ W.t(), backward dX = dY @ W and
dW = dY.t() @ X.

Layouts name how the operands are stored: N = row-major as used, T = a transposed view of a row-major tensor
(e.g. weight.t()), so NT is linear's forward and TN its weight gradient. Both libraries use all their threads.
Run: python benchmarks/cpu_gemm.py [--dtypes float32,float64] [--cases square,mlp,minigpt,vit,tall] [--kernel avx2]
     [--json out.json]"""
import argparse

from _timing import median_time, write_results

SQUARE = [("square", n, n, n, "NN") for n in (256, 512, 1024, 2048)]
# (label, M, K, N, layout) for Linear(1024, 4096) then Linear(4096, 1024), batch 256.
MLP = [
    ("fc1 fwd", 256, 1024, 4096, "NT"), ("fc2 fwd", 256, 4096, 1024, "NT"),
    ("fc2 dX", 256, 1024, 4096, "NN"), ("fc2 dW", 1024, 256, 4096, "TN"),
    ("fc1 dX", 256, 4096, 1024, "NN"), ("fc1 dW", 4096, 256, 1024, "TN"),
]
# MiniGPT's Linear layers (d=256, 64 x 128 tokens; benchmarks/train_step.py): forward, dX and dW of qkv, fc1, fc2.
MINIGPT = [
    ("gpt qkv", 8192, 256, 768, "NT"), ("gpt fc1", 8192, 256, 1024, "NT"), ("gpt fc2", 8192, 1024, 256, "NT"),
    ("gpt qkv dX", 8192, 768, 256, "NN"), ("gpt fc1 dX", 8192, 1024, 256, "NN"), ("gpt fc2 dX", 8192, 256, 1024, "NN"),
    ("gpt qkv dW", 768, 8192, 256, "TN"), ("gpt fc1 dW", 1024, 8192, 256, "TN"), ("gpt fc2 dW", 256, 8192, 1024, "TN"),
]

# Tall products with few columns (Note [Swapped operands] in core/src/ops/cpu_gemm.cpp): an LM head over MiniGPT's
# vocabulary, a 10-class head, a low-rank (LoRA-style) down-projection, a narrow projection of many rows.
TALL = [
    ("gpt head", 8192, 256, 96, "NT"), ("classes", 8192, 768, 10, "NT"), ("lora down", 8192, 1024, 16, "NT"),
    ("narrow", 16384, 128, 32, "NN"), ("probe", 4096, 64, 8, "NN"),
]

# ViT's (d=192, 65 tokens x batch 128, 3 heads; benchmarks/train_step.py): qkv, fc1, fc2 and their gradients, and
# the attention's batched products (B = 128 x 3 heads of [65, 64] @ [64, 65], [65, 65] @ [65, 64] and backward).
VIT = [
    ("vit qkv", 8320, 192, 576, "NT"), ("vit fc1", 8320, 192, 768, "NT"), ("vit fc2", 8320, 768, 192, "NT"),
    ("vit qkv dX", 8320, 576, 192, "NN"), ("vit fc2 dX", 8320, 192, 768, "NN"),
    ("vit qkv dW", 576, 8320, 192, "TN"), ("vit fc1 dW", 768, 8320, 192, "TN"), ("vit fc2 dW", 192, 8320, 768, "TN"),
    ("vit qk^T", 65, 64, 65, "NT", 384), ("vit pv", 65, 65, 64, "NN", 384), ("vit dP", 65, 64, 65, "NT", 384),
    ("vit dV", 65, 65, 64, "TN", 384),
]


def operands(m, lib, M, K, N, layout, dtype, batch=0):
    """A [M, K] and B [K, N] (with a leading batch dim when batch > 0) stored as the layout says (T: allocated
    transposed, then viewed back)."""
    if batch:
        a = m.randn(batch, K, M).transpose(1, 2) if layout[0] == "T" else m.randn(batch, M, K)
        b = m.randn(batch, N, K).transpose(1, 2) if layout[1] == "T" else m.randn(batch, K, N)
        return a.to(getattr(lib, dtype)), b.to(getattr(lib, dtype))
    a = m.randn(K, M).t() if layout[0] == "T" else m.randn(M, K)
    b = m.randn(N, K).t() if layout[1] == "T" else m.randn(K, N)
    return a.to(getattr(lib, dtype)), b.to(getattr(lib, dtype))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtypes", default="float32")
    ap.add_argument("--kernel", help="vibetensor micro-kernel family: generic, avx2, avx512 or avx512bf16 (default: best)")
    ap.add_argument("--cases", default="square,mlp,minigpt", help="which groups of rows")
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch
    import vibetensor.torch as vt
    from vibetensor._C import core as vt_core

    if args.kernel:
        vt_core.set_cpu_gemm_kernel(args.kernel)
    kernel = vt_core.cpu_gemm_kernel() if hasattr(vt_core, "cpu_gemm_kernel") else "none (row loop)"
    print(f"# vibetensor kernel {kernel}, {vt.get_num_threads()} threads; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'case':<11}{'M':>6}{'K':>6}{'N':>6} {'lay':<4}{'dtype':<9}{'vt GF/s':>9}{'torch GF/s':>11}{'ratio':>7}")
    rows = []
    for dtype in args.dtypes.split(","):
        groups = {"square": SQUARE, "mlp": MLP, "minigpt": MINIGPT, "vit": VIT, "tall": TALL}
        for label, M, K, N, layout, *batch in [r for g in args.cases.split(",") for r in groups[g]]:
            batch = batch[0] if batch else 0
            flop = 2.0 * M * N * K * max(batch, 1)
            iters = max(2, min(50, int(2e9 / flop)))
            a, b = operands(vt, vt, M, K, N, layout, dtype, batch)
            ta, tb = operands(torch, torch, M, K, N, layout, dtype, batch)
            tv = median_time(lambda: vt.matmul(a, b), iters, repeats=5)
            tt = median_time(lambda: torch.matmul(ta, tb), iters, repeats=5)
            row = {"case": label, "M": M, "K": K, "N": N, "layout": layout, "dtype": dtype,
                   "vt_gflops": flop / tv / 1e9, "torch_gflops": flop / tt / 1e9, "ratio": tv / tt}
            rows.append(row)
            print(f"{label:<11}{M:>6}{K:>6}{N:>6} {layout:<4}{dtype:<9}{row['vt_gflops']:>9.1f}"
                  f"{row['torch_gflops']:>11.1f}{row['ratio']:>7.2f}", flush=True)
    if args.json:
        write_results(args.json, rows, torch=torch.__version__, vt_kernel=kernel)


if __name__ == "__main__":
    main()
