"""MLP on synthetic data through vibetensor's autograd, self-checking: a 2-layer network learns a fixed random
teacher network's outputs, and the final mean-squared error must fall below --target.

  python examples/mlp.py [--device cuda] [--steps 300] [--hidden 256]"""
import argparse
import sys
import time

import vibetensor.torch as vt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--inputs", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--target", type=float, default=0.01, help="the final MSE must fall below this")
    args = ap.parse_args(argv)
    vt.manual_seed(0)
    nn = vt.nn
    with vt.no_grad():  # a fixed random teacher: the data
        teacher = nn.Sequential(nn.Linear(args.inputs, 64), nn.Tanh(), nn.Linear(64, 4)).to(args.device)
    model = nn.Sequential(nn.Linear(args.inputs, args.hidden), nn.GELU(), nn.Linear(args.hidden, args.hidden),
                          nn.GELU(), nn.Linear(args.hidden, 4)).to(args.device)
    opt = vt.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    t0 = time.time()
    for step in range(args.steps):
        x = vt.randn(args.batch, args.inputs, device=args.device)
        with vt.no_grad():
            y = teacher(x)
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  mse {float(loss.detach()):.4f}  {time.time() - t0:.1f} s")
    final = float(loss.detach())
    ok = final < args.target
    print(f"final mse {final:.4f}: {'OK' if ok else 'FAIL'} (target < {args.target})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
