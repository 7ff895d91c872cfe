"""CUDA op throughput and eager overhead, vibetensor vs PyTorch on the same GPU in one run, as ratios (vt / torch).

  bandwidth: 1 GiB float32 elementwise add (a + b: two reads, one write) and full sum (one read), reported as
  bytes moved per second beside a device-to-device copy of the same size (the attainable reference; goal:
  vt time <= 1.0x torch, i.e. >= 90% of the copy bandwidth); also a row sum, a column sum, a strided add, a
  transposed copy, casts (dense and transposed), a strided fill, gelu and its gradient (float32 and bfloat16),
  bfloat16 add, float16 exp and scaling, a Linear's bias add (a broadcast operand) and its bias gradient (a tall,
  narrow column sum).
  overhead: host time per op for 1-element CUDA tensors (kernel launch included, no sync in the loop;
  goal <= 0.5x). Run: python benchmarks/cuda_ops.py [--json out.json]. Needs a GPU and torch with CUDA."""
import argparse
import json

from _timing import median_time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--gib", type=float, default=1.0, help="size of the bandwidth operands")
    args = ap.parse_args()
    import torch
    import vibetensor.torch as vt

    rows = []

    def row(name, v, t, unit, note=""):
        rows.append({"case": name, "vt": v, "torch": t, "unit": unit, "ratio_vt_over_torch": v / t, "note": note})
        print(f"{name:<34}{v:>11.3f}{t:>11.3f}  {unit:<5}{v / t:>7.2f}  {note}")

    sync_v, sync_t = vt.cuda.synchronize, torch.cuda.synchronize
    n = int(args.gib * (1 << 30)) // 4
    gb = n * 4 / 1e9
    xt = torch.randn(n, device="cuda")
    yt = torch.randn(n, device="cuda")
    xv, yv = vt.from_dlpack(xt.clone()), vt.from_dlpack(yt.clone())  # same values on both sides
    print(f"{'case':<34}{'vibetensor':>11}{'torch':>11}  {'unit':<5}{'ratio':>7}")

    def timed(fv, ft, iters=10):
        return median_time(fv, iters, sync=sync_v), median_time(ft, iters, sync=sync_t)

    outv, outt = vt.empty(n, device="cuda"), torch.empty(n, device="cuda")
    cv, ct = timed(lambda: outv.copy_(xv), lambda: outt.copy_(xt))
    row(f"copy {args.gib:g} GiB (time)", cv * 1e3, ct * 1e3, "ms", f"torch {2 * gb / ct:.0f} GB/s moved")
    av, at = timed(lambda: xv + yv, lambda: xt + yt)
    row(f"add {args.gib:g} GiB fp32 (time)", av * 1e3, at * 1e3, "ms",
        f"vt {3 * gb / av:.0f} GB/s = {100 * (3 * gb / av) / (2 * gb / ct):.0f}% of copy")
    sv, st = timed(lambda: xv.sum(), lambda: xt.sum())
    row(f"sum {args.gib:g} GiB fp32 (time)", sv * 1e3, st * 1e3, "ms",
        f"vt {gb / sv:.0f} GB/s = {100 * (gb / sv) / (2 * gb / ct):.0f}% of copy")
    rows_n = 1 << 14
    mv, mt = xv.view(rows_n, -1), xt.view(rows_n, -1)
    rv, rt = timed(lambda: mv.sum(1), lambda: mt.sum(1))
    row("row sum [16384, n/16384]", rv * 1e3, rt * 1e3, "ms")
    kv, kt = timed(lambda: mv.sum(0), lambda: mt.sum(0))
    row("column sum [16384, n/16384]", kv * 1e3, kt * 1e3, "ms")
    tv_, tt_ = timed(lambda: mv.t() + 1.0, lambda: mt.t() + 1.0)
    row("strided add (transposed view)", tv_ * 1e3, tt_ * 1e3, "ms")
    cv_, ct_ = timed(lambda: mv.t().contiguous(), lambda: mt.t().contiguous())
    row("transposed copy (.t().contiguous())", cv_ * 1e3, ct_ * 1e3, "ms")
    hv_, ht_ = timed(lambda: xv.to(vt.bfloat16), lambda: xt.to(torch.bfloat16))
    row("cast fp32 -> bf16 (dense)", hv_ * 1e3, ht_ * 1e3, "ms")
    # a transposed view cast into a contiguous result on both sides (torch's .to() would keep the view's strides)
    hv_, ht_ = timed(lambda: vt.empty(mv.shape[::-1], dtype=vt.bfloat16, device="cuda").copy_(mv.t()),
                     lambda: torch.empty(mt.shape[::-1], dtype=torch.bfloat16, device="cuda").copy_(mt.t()))
    row("cast fp32 -> bf16 (transposed)", hv_ * 1e3, ht_ * 1e3, "ms")
    fv_, ft_ = timed(lambda: mv[:, ::2].fill_(1.0), lambda: mt[:, ::2].fill_(1.0))
    row("fill every other column", fv_ * 1e3, ft_ * 1e3, "ms")
    # exact gelu and its gradient: elementwise with an erf (and an exp) per element, where arithmetic competes with
    # the memory traffic (MiniGPT's MLP runs them on [8192, 1024] activations: --gib 0.03125)
    gv, gt = timed(lambda: vt.nn.functional.gelu(xv), lambda: torch.nn.functional.gelu(xt))
    row("gelu fp32", gv * 1e3, gt * 1e3, "ms")
    from vibetensor._C import core as vt_core
    gelu_bwd = vt_core.op("vt::gelu_backward")
    gv, gt = timed(lambda: gelu_bwd(yv, xv, approximate="none"), lambda: torch.ops.aten.gelu_backward(yt, xt))
    row("gelu backward fp32", gv * 1e3, gt * 1e3, "ms")
    # the same n elements in 16-bit types (eight to a 16-byte vector): mixed-precision activations; a function of
    # its own so that its operands are freed on return
    def sixteen_bit_rows():
        xb_t, yb_t, xh_t = xt.bfloat16(), yt.bfloat16(), xt.half()
        xb_v, yb_v, xh_v = (vt.from_dlpack(t.clone()) for t in (xb_t, yb_t, xh_t))
        av, at = timed(lambda: xb_v + yb_v, lambda: xb_t + yb_t)
        row("add bf16 (time)", av * 1e3, at * 1e3, "ms", f"vt {1.5 * gb / av:.0f} GB/s")
        gv, gt = timed(lambda: vt.nn.functional.gelu(xb_v), lambda: torch.nn.functional.gelu(xb_t))
        row("gelu bf16", gv * 1e3, gt * 1e3, "ms")
        gv, gt = timed(lambda: gelu_bwd(yb_v, xb_v, approximate="none"),
                       lambda: torch.ops.aten.gelu_backward(yb_t, xb_t))
        row("gelu backward bf16", gv * 1e3, gt * 1e3, "ms")
        ev, et = timed(lambda: xh_v.exp(), lambda: xh_t.exp())
        row("exp fp16", ev * 1e3, et * 1e3, "ms")
        mv_, mt_ = timed(lambda: xh_v * 0.5, lambda: xh_t * 0.5)
        row("mul by a scalar fp16", mv_ * 1e3, mt_ * 1e3, "ms")

    sixteen_bit_rows()
    # a Linear's bias add (the output [tokens, features] plus a [features] vector): a broadcast operand
    if n >= 8192 * 3072:
        hv, ht = xv[: 8192 * 3072].view(8192, 3072), xt[: 8192 * 3072].view(8192, 3072)
        bv, bt = yv[:3072], yt[:3072]
        ov, ot = timed(lambda: hv + bv, lambda: ht + bt, iters=50)
        row("bias add [8192, 3072] + [3072]", ov * 1e6, ot * 1e6, "us")
    # a Linear's bias gradient: the column sum of a tall, narrow matrix (Note [Column tiles] in reduce.cuh)
    if n >= 65536 * 768:
        gv_, gt_ = xv[: 65536 * 768].view(65536, 768), xt[: 65536 * 768].view(65536, 768)
        ov, ot = timed(lambda: gv_.sum(0), lambda: gt_.sum(0), iters=50)
        row("bias grad: column sum [65536, 768]", ov * 1e6, ot * 1e6, "us")

    a_v, b_v = vt.ones(1, device="cuda"), vt.ones(1, device="cuda")
    a_t, b_t = torch.ones(1, device="cuda"), torch.ones(1, device="cuda")
    cases = [
        ("a + b", lambda: a_v + b_v, lambda: a_t + b_t),
        ("a.add_(b)", lambda: a_v.add_(b_v), lambda: a_t.add_(b_t)),
        ("a * 2.0", lambda: a_v * 2.0, lambda: a_t * 2.0),
        ("relu(a)", lambda: vt.relu(a_v), lambda: torch.relu(a_t)),
        ("a.sum()", lambda: a_v.sum(), lambda: a_t.sum()),
    ]
    floor = median_time(lambda: torch.cuda._sleep(0), 20000, sync=sync_t)
    print(f"{'  launch floor (torch.cuda._sleep(0))':<34}{'':>11}{floor * 1e6:>11.3f}  us")
    for name, fv, ft in cases:
        v = median_time(fv, 20000, sync=sync_v)
        t = median_time(ft, 20000, sync=sync_t)
        row(f"tiny CUDA op {name}", v * 1e6, t * 1e6, "us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
