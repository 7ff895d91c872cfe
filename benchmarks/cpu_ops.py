"""CPU kernel throughput: vibetensor vs PyTorch on the same 4096 x 1024 float32 operands in one run, as ratios
(vt time / torch time; below 1 is faster). Elementwise math and activations, binary ops, reductions along
rows, columns and all dims, the fused nn ops, and the gradients autograd computes for the activations and
losses. Both sides use every CPU thread (vibetensor's pool and torch's OpenMP), each timed after a pause that lets the
other's spinning threads block. Rows are sorted worst first.

--dtype bfloat16 (or float16) runs every op on operands of that dtype (the model's parameters too).
--rows 64 runs them on 64 x 1024 operands (65,536 elements): where a parallel region's start and end cost as
much as its work, the sizes of a small model's activations.

Run: python benchmarks/cpu_ops.py [--ops exp,softmax,...] [--json out.json] [--repeats 7] [--dtype bfloat16]
     [--rows 4096]"""
import argparse
import time

from _timing import median_time, write_results


def cases(lib, dtype="float32", rows=4096):
    """name -> a zero-argument function computing that op on fresh operands of `lib` (torch or vt)."""
    F = lib.nn.functional
    lib.manual_seed(0)
    dt = getattr(lib, dtype)
    x, y = lib.randn(rows, 1024).to(dt), lib.randn(rows, 1024).to(dt)
    p = (lib.rand(rows, 1024) + 0.1).to(dt)
    w, b = lib.randn(1024).to(dt), lib.randn(1024).to(dt)
    tgt = lib.randint(0, 1024, (rows,))
    ops = {
        "exp": lambda: lib.exp(x), "log": lambda: lib.log(p), "sqrt": lambda: lib.sqrt(p),
        "rsqrt": lambda: lib.rsqrt(p), "sin": lambda: lib.sin(x), "cos": lambda: lib.cos(x),
        "erf": lambda: lib.erf(x), "log1p": lambda: lib.log1p(p), "expm1": lambda: lib.expm1(x),
        "tanh": lambda: lib.tanh(x), "sigmoid": lambda: lib.sigmoid(x),
        "relu": lambda: F.relu(x), "gelu": lambda: F.gelu(x), "gelu_tanh": lambda: F.gelu(x, approximate="tanh"),
        "silu": lambda: F.silu(x), "softplus": lambda: F.softplus(x), "mish": lambda: F.mish(x),
        "elu": lambda: F.elu(x), "leaky_relu": lambda: F.leaky_relu(x), "logsigmoid": lambda: F.logsigmoid(x),
        "clamp": lambda: x.clamp(-1, 1), "abs": lambda: x.abs(),
        "x ** 2": lambda: x ** 2, "x ** y": lambda: p ** y,
        "add": lambda: x + y, "mul": lambda: x * y, "div": lambda: x / p, "maximum": lambda: lib.maximum(x, y),
        "where": lambda: lib.where(x > 0, x, y), "to bf16": lambda: x.to(lib.bfloat16 if dtype == "float32" else lib.float32),
        "transpose copy": lambda: x.t().contiguous(),
        "sum": lambda: x.sum(), "sum rows": lambda: x.sum(-1), "sum cols": lambda: x.sum(0),
        "mean rows": lambda: x.mean(-1), "max rows": lambda: x.max(-1),
        "amax rows": lambda: x.amax(-1), "amax cols": lambda: x.amax(0), "max": lambda: x.max(), "var rows": lambda: x.var(-1),
        "norm": lambda: x.norm(), "logsumexp": lambda: lib.logsumexp(x, -1), "argmax": lambda: x.argmax(-1),
        "cumsum": lambda: x.cumsum(-1),
        "softmax": lambda: lib.softmax(x, -1), "log_softmax": lambda: lib.log_softmax(x, -1),
        "layer_norm": lambda: F.layer_norm(x, (1024,), w, b), "rms_norm": lambda: F.rms_norm(x, (1024,), w),
        "cross_entropy": lambda: F.cross_entropy(x, tgt), "dropout": lambda: F.dropout(x, 0.1),
        "randn": lambda: lib.randn(rows, 1024, dtype=dt), "rand": lambda: lib.rand(rows, 1024, dtype=dt),
    }
    grads = {
        "tanh grad": lambda a: lib.tanh(a), "sigmoid grad": lambda a: lib.sigmoid(a),
        "gelu grad": lambda a: F.gelu(a), "gelu_tanh grad": lambda a: F.gelu(a, approximate="tanh"),
        "silu grad": lambda a: F.silu(a), "softmax grad": lambda a: lib.softmax(a, -1),
        "log_softmax grad": lambda a: lib.log_softmax(a, -1),
        "layer_norm grad": lambda a: F.layer_norm(a, (1024,), w, b),
        "cross_entropy grad": lambda a: F.cross_entropy(a, tgt),
    }
    for name, fn in grads.items():
        a = x.clone().requires_grad_(True)
        out = fn(a)
        go = lib.ones_like(out)
        ops[name] = (lambda out=out, a=a, go=go: lib.autograd.grad(out, a, go, retain_graph=True))
    return ops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", help="comma-separated names (default: all)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--rows", type=int, default=4096, help="operands of rows x 1024 elements")
    args = ap.parse_args()
    import torch

    import vibetensor.torch as vt

    ours, theirs = cases(vt, args.dtype, args.rows), cases(torch, args.dtype, args.rows)
    names = args.ops.split(",") if args.ops else list(ours)
    iters = max(3, 3 * 4096 // args.rows)  # each timed loop about as long as three calls at 4096 rows
    rows = []
    for name in names:
        # Each side's worker threads spin for a while after its calls (OpenMP's, and vibetensor's pool, Note
        # [Workers spin before they sleep]); timed right after the other side, a side would share its cores with
        # them. A pause lets them block first.
        time.sleep(0.05)
        tv = median_time(ours[name], iters, repeats=args.repeats, warmup=2)
        time.sleep(0.05)
        tt = median_time(theirs[name], iters, repeats=args.repeats, warmup=2)
        rows.append({"op": name, "vt_ms": tv * 1e3, "torch_ms": tt * 1e3, "ratio": tv / tt})
    print(f"{f'op ({args.rows} x 1024 {args.dtype})':<26}{'vibetensor ms':>14}{'torch ms':>10}{'ratio':>8}")
    for r in sorted(rows, key=lambda r: -r["ratio"]):
        print(f"{r['op']:<26}{r['vt_ms']:>14.4f}{r['torch_ms']:>10.4f}{r['ratio']:>8.2f}")
    if args.json:
        write_results(args.json, rows, device="cpu", torch=torch.__version__, threads=torch.get_num_threads(),
                      dtype=args.dtype)


if __name__ == "__main__":
    main()
