"""Fabric example 1: data-parallel MiniGPT training in one process over every CUDA device (real or emulated).

Each device holds a replica made from the same seed; each step splits one global batch across the replicas,
runs forward/backward on each, averages all gradients with ONE all_reduce over a flat gradient buffer per device
(bucketing, as DDP), and steps each replica's optimizer. Checks, and exits 1 if any fails:
  * replicas stay bit-identical (every parameter equal on every device after every step), and
  * the loss curve matches single-device training on the same global batch (same data, same init) to 1e-3.

  VT_EMULATE_DEVICES=4 python examples/fabric_1_data_parallel.py [--steps 30]
Prints "skipped: needs 2 CUDA devices" and exits 0 where there are fewer.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import vibetensor.torch as vt  # noqa: E402
from vibetensor import fabric  # noqa: E402
from minigpt import MiniGPT, corpus  # noqa: E402

F = vt.nn.functional


def make_model(vocab, args, device):
    vt.manual_seed(0)
    return MiniGPT(vocab, args.d, 4, args.layers, args.context).to(device)


def flat_grads(model):
    return vt.cat([p.grad.reshape(-1) for p in model.parameters()])


def unflatten_into(model, flat):
    off = 0
    for p in model.parameters():
        n = p.numel()
        p.grad.copy_(flat[off:off + n].reshape(p.shape))
        off += n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--context", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32, help="global batch, split across the devices")
    args = ap.parse_args(argv)
    n = vt.cuda.device_count() if vt.cuda.is_available() else 0
    if n < 2:
        print("skipped: needs 2 CUDA devices (or VT_EMULATE_DEVICES=2 on one GPU)")
        return 0
    text = corpus()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = vt.tensor([stoi[c] for c in text])
    vocab = len(chars)
    per = args.batch // n
    devices = list(range(n))
    with fabric.Fabric() as fab:
        print(fab.report())
        replicas = [make_model(vocab, args, f"cuda:{d}") for d in devices]
        opts = [vt.optim.AdamW(m.parameters(), lr=3e-3) for m in replicas]
        single = make_model(vocab, args, "cuda:0")
        single_opt = vt.optim.AdamW(single.parameters(), lr=3e-3)
        ok = True
        for step in range(args.steps):
            vt.manual_seed(1000 + step)
            starts = vt.randint(0, len(text) - args.context - 1, (per * n,)).tolist()
            x = vt.stack([data[s:s + args.context] for s in starts])
            y = vt.stack([data[s + 1:s + 1 + args.context] for s in starts])
            losses = []
            for d, m in zip(devices, replicas):
                xs, ys = x[d * per:(d + 1) * per].to(f"cuda:{d}"), y[d * per:(d + 1) * per].to(f"cuda:{d}")
                loss = F.cross_entropy(m(xs).reshape(-1, vocab), ys.reshape(-1))
                opts[d].zero_grad()
                loss.backward()
                losses.append(loss.detach())
            buckets = [flat_grads(m) for m in replicas]
            fabric.all_reduce(buckets, op="avg")  # one collective for every gradient
            for m, b, o in zip(replicas, buckets, opts):
                unflatten_into(m, b)
                o.step()
            dp_loss = sum(float(l.cpu()) for l in losses) / n
            # the reference: one device, the whole global batch
            ref = F.cross_entropy(single(x[:per * n].to("cuda:0")).reshape(-1, vocab), y[:per * n].to("cuda:0").reshape(-1))
            single_opt.zero_grad()
            ref.backward()
            single_opt.step()
            same = all(vt.equal(p0.cpu(), pk.cpu()) for m in replicas[1:]
                       for p0, pk in zip(replicas[0].parameters(), m.parameters()))
            close = abs(dp_loss - float(ref.detach().cpu())) < 1e-3
            ok = ok and same and close
            if step % 10 == 0 or step == args.steps - 1 or not (same and close):
                print(f"step {step:3d}  data-parallel loss {dp_loss:.4f}  single-device {float(ref.detach().cpu()):.4f}"
                      f"  replicas identical: {same}")
        st = fab.stats()["total"]
        print(f"fabric counters: {st['ops']} cross-device reads, {st['bytes'] / 1e6:.1f} MB, {st['hits']} over P2P")
    print("OK" if ok else "FAIL: replicas diverged or the loss left single-device training")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
