"""Fabric example 2: a two-stage pipeline with autograd across devices.

Stage 1 (an MLP block) lives on cuda:0, stage 2 (another block and the head) on cuda:1; activations cross with
.to("cuda:1") and gradients flow back through the copy (backward runs each node on its forward's stream, fenced
with events across the devices). Micro-batches are pushed through one after another and their gradients
accumulate. Checks against the same model on one device (same init, same data): losses and every gradient
agree to 1e-5, and it trains (the loss falls by 5% or more in 40 steps). Exits 1 on a failed check.

  VT_EMULATE_DEVICES=2 python examples/fabric_2_pipeline.py
"""
import sys

import vibetensor.torch as vt

nn = vt.nn


def stages(device0, device1):
    vt.manual_seed(0)
    s1 = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 64)).to(device0)
    s2 = nn.Sequential(nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 1)).to(device1)
    return s1, s2


def main():
    if not vt.cuda.is_available() or vt.cuda.device_count() < 2:
        print("skipped: needs 2 CUDA devices (or VT_EMULATE_DEVICES=2 on one GPU)")
        return 0
    vt.manual_seed(1)
    x = vt.randn(64, 32)
    y = (x[:, :1] * 2 - x[:, 1:2]).tanh()
    a1, a2 = stages("cuda:0", "cuda:1")
    r1, r2 = stages("cuda:0", "cuda:0")
    params = list(a1.parameters()) + list(a2.parameters())
    opt = vt.optim.SGD(params, lr=0.05)
    ref_params = list(r1.parameters()) + list(r2.parameters())
    ref_opt = vt.optim.SGD(ref_params, lr=0.05)
    ok, first, last = True, None, None
    for step in range(40):
        opt.zero_grad()
        ref_opt.zero_grad()
        total = ref_total = 0.0
        for mb in range(4):  # micro-batches
            xb, yb = x[mb * 16:(mb + 1) * 16], y[mb * 16:(mb + 1) * 16]
            h = a1(xb.to("cuda:0")).to("cuda:1")  # activations cross devices here
            loss = ((a2(h) - yb.to("cuda:1")) ** 2).mean() / 4
            loss.backward()
            total += float(loss.detach().cpu())
            ref = ((r2(r1(xb.to("cuda:0"))) - yb.to("cuda:0")) ** 2).mean() / 4
            ref.backward()
            ref_total += float(ref.detach().cpu())
        for p, q in zip(params, ref_params):
            if not vt.allclose(p.grad.cpu(), q.grad.cpu(), rtol=1e-5, atol=1e-6):
                ok = False
        ok = ok and abs(total - ref_total) < 1e-5
        opt.step()
        ref_opt.step()
        first = total if first is None else first
        last = total
        if step % 10 == 0:
            print(f"step {step:2d}  pipeline loss {total:.5f}  single-device {ref_total:.5f}")
    print(f"loss {first:.4f} -> {last:.4f}; gradients match single-device: {ok}")
    ok = ok and last < first * 0.95  # it trains
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
