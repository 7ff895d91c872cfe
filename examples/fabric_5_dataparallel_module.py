"""Fabric example 5: the same data-parallel MiniGPT training as example 1, written the torch way: the model on
cuda:0 wrapped in vt.nn.DataParallel, which splits each batch across every device, runs one replica per device
and sums the replicas' gradients into the model during backward. Checks, and exits 1 if it fails:
  * the loss curve matches single-device training on the same batches (same data, same init) to 1e-3.

  VT_EMULATE_DEVICES=4 python examples/fabric_5_dataparallel_module.py [--steps 30]
Prints "skipped: needs 2 CUDA devices" and exits 0 where there are fewer.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import vibetensor.torch as vt  # noqa: E402
from minigpt import MiniGPT, corpus  # noqa: E402

F = vt.nn.functional


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

    def make_model():
        vt.manual_seed(0)
        return MiniGPT(vocab, args.d, 4, args.layers, args.context).to("cuda:0")

    model, single = make_model(), make_model()
    parallel = vt.nn.DataParallel(model)  # every device; outputs gathered on cuda:0
    print(f"DataParallel over {len(parallel.device_ids)} devices ({vt.cuda.emulation_label() or 'real GPUs'})")
    opt, single_opt = vt.optim.AdamW(model.parameters(), lr=3e-3), vt.optim.AdamW(single.parameters(), lr=3e-3)
    ok = True
    for step in range(args.steps):
        vt.manual_seed(1000 + step)
        starts = vt.randint(0, len(text) - args.context - 1, (args.batch,)).tolist()
        x = vt.stack([data[s:s + args.context] for s in starts]).to("cuda:0")
        y = vt.stack([data[s + 1:s + 1 + args.context] for s in starts]).to("cuda:0").reshape(-1)
        losses = []
        for net, o in ((parallel, opt), (single, single_opt)):
            loss = F.cross_entropy(net(x).reshape(-1, vocab), y)
            o.zero_grad()
            loss.backward()
            o.step()
            losses.append(float(loss.detach().cpu()))
        close = abs(losses[0] - losses[1]) < 1e-3
        ok = ok and close
        if step % 10 == 0 or step == args.steps - 1 or not close:
            print(f"step {step:3d}  DataParallel loss {losses[0]:.4f}  single-device {losses[1]:.4f}")
    print("OK" if ok else "FAIL: the DataParallel loss left single-device training")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
