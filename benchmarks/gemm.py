"""CUDA GEMMs, vibetensor vs PyTorch on the same GPU in one run, as ratios (vt time / torch time; goal <= 1.0x).

Rows: square products 1024-8192 and the Linear layers of the project's models (benchmarks/train_step.py's MLP,
examples/minigpt.py and examples/vit.py at the sizes train_step runs them), each as a plain product
(x @ w.t(), cuBLAS) and as F.linear with a bias (one cuBLASLt GEMM with the bias epilogue in vibetensor; torch's
addmm takes the same epilogue), in float32, TF32, bfloat16 and float16. Times are medians over seven rounds of
host-timed loops closed by a synchronize, each round timing vibetensor then torch (paired_times), so clock drift
during the run reaches both; TFLOP/s counts 2 M N K per product.

VT_CUBLASLT_TUNE=N in the environment has vibetensor time the heuristic's first N cuBLASLt candidates per large
problem (Note [Lt algorithm timing]); the setting is printed and kept in the JSON.

Run: python benchmarks/gemm.py [--json out.json] [--quick]. Needs a GPU and torch with CUDA."""
import argparse
import os

from _timing import paired_times, write_results

SQUARE = [(s, s, s, f"square {s}") for s in (1024, 2048, 4096, 8192)]
# (M rows, K in_features, N out_features, which layer)
MODEL = [
    (256, 1024, 4096, "mlp fc1"), (256, 4096, 1024, "mlp fc2"),
    (8192, 256, 768, "minigpt qkv"), (8192, 256, 1024, "minigpt fc1"), (8192, 1024, 256, "minigpt fc2"),
    (8192, 256, 96, "minigpt head"),
    (8320, 192, 576, "vit qkv"), (8320, 192, 768, "vit fc1"), (8320, 768, 192, "vit fc2"),
]
DTYPES = ["float32", "tf32", "bfloat16", "float16"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true", help="square 1024/4096 and the model layers only")
    args = ap.parse_args()
    import torch
    import vibetensor.torch as vt

    shapes = [s for s in SQUARE if not args.quick or s[0] in (1024, 4096)] + MODEL
    rows = []
    tune = os.environ.get("VT_CUBLASLT_TUNE", "off")
    print(f"VT_CUBLASLT_TUNE={tune}")
    print(f"{'case':<22}{'dtype':<10}{'op':<12}{'vt TFLOP/s':>11}{'torch':>9}{'ratio':>7}")
    for dtype in DTYPES:
        tf32 = dtype == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        vt.backends.cuda.matmul.allow_tf32 = tf32
        tdt = torch.float32 if tf32 else getattr(torch, dtype)
        for m_rows, k, n, name in shapes:
            x = torch.randn(m_rows, k, device="cuda", dtype=tdt)
            w = torch.randn(n, k, device="cuda", dtype=tdt) / k ** 0.5
            b = torch.randn(n, device="cuda", dtype=tdt)
            xv, wv, bv = (vt.from_dlpack(t.clone()) for t in (x, w, b))
            flop = 2.0 * m_rows * n * k
            # about 20 ms per timed loop at the GPU's rate, at least 3 calls
            iters = max(3, min(200, int(0.02 / (flop / 400e12))))
            for op, fv, ft in (
                ("mm", lambda: xv @ wv.t(), lambda: x @ w.t()),
                ("linear+bias", lambda: vt.nn.functional.linear(xv, wv, bv),
                 lambda: torch.nn.functional.linear(x, w, b)),
            ):
                tv, tt = paired_times(fv, ft, iters, rounds=7, sync_a=vt.cuda.synchronize,
                                      sync_b=torch.cuda.synchronize)
                rows.append({"case": name, "m": m_rows, "k": k, "n": n, "dtype": dtype, "op": op,
                             "vt_us": tv * 1e6, "torch_us": tt * 1e6, "vt_tflops": flop / tv / 1e12,
                             "torch_tflops": flop / tt / 1e12, "ratio_vt_over_torch": tv / tt})
                print(f"{name:<22}{dtype:<10}{op:<12}{flop / tv / 1e12:>11.1f}{flop / tt / 1e12:>9.1f}"
                      f"{tv / tt:>7.2f}")
    torch.backends.cuda.matmul.allow_tf32 = False
    vt.backends.cuda.matmul.allow_tf32 = False
    ratios = sorted(r["ratio_vt_over_torch"] for r in rows)
    print(f"rows {len(rows)}: median ratio {ratios[len(ratios) // 2]:.2f}, worst {ratios[-1]:.2f}, "
          f"rows above 1.05x: {sum(r > 1.05 for r in ratios)}")
    if args.json:
        write_results(args.json, rows, benchmark="gemm", device=torch.cuda.get_device_name(),
                      torch=torch.__version__, vt_cublaslt_tune=tune)


if __name__ == "__main__":
    main()
