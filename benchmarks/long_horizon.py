"""Long-horizon training regression: MiniGPT and the ViT trained for many steps by vibetensor and by torch from
the same initial weights on the same batches in the same order, loss curves compared.

Stateful bugs (optimizer state, schedulers, in-place updates, caching) show up as curves that drift apart
after hundreds of steps while every unit test passes. The two runs cannot stay bit-identical (float32 sums in
different orders), so the check is statistical: the curves are smoothed over windows of --window steps and
the largest relative gap between the smoothed curves must stay under --tolerance. Writes the curves as JSON
and, when matplotlib is present, a PNG of both curves and their gap.

  python benchmarks/long_horizon.py [--device cuda] [--steps 2000] [--models minigpt,vit] [--out DIR]
Exit status 1 when a model's curves part by more than the tolerance."""
import argparse
import importlib.util
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent


def example(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def setup(name, m, args):
    """(model, batches) for the torch-like module m; batches(step) gives the step's (inputs, targets)."""
    rng = np.random.default_rng(1234)  # one data stream, replayed identically for both sides
    if name == "minigpt":
        mod = example("minigpt")
        text = mod.corpus()
        chars = sorted(set(text))
        data = np.array([chars.index(c) for c in text], dtype=np.int64)
        ctx = args.context
        model = mod.model_class(m)(len(chars), args.d, 4, args.layers, ctx)
        starts = rng.integers(0, len(data) - ctx - 1, size=(args.steps, args.batch))

        def batch(step):
            x = np.stack([data[s:s + ctx] for s in starts[step]])
            y = np.stack([data[s + 1:s + 1 + ctx] for s in starts[step]])
            return x, y.reshape(-1)
    else:
        model = example("vit").model_class(m)(d=args.d, depth=args.layers, heads=4)
        protos = rng.standard_normal((10, 3, 32, 32)).astype(np.float32)
        labels = rng.integers(0, 10, size=(args.steps, args.batch))
        noise_seeds = rng.integers(0, 2**31, size=args.steps)

        def batch(step):
            noise = np.random.default_rng(noise_seeds[step]).standard_normal((args.batch, 3, 32, 32))
            return (protos[labels[step]] + 0.5 * noise).astype(np.float32), labels[step]
    return model, batch


def train(m, name, args, init_state):
    model, batch = setup(name, m, args)
    if init_state is not None:
        model.load_state_dict({k: m.from_numpy(v.copy()) for k, v in init_state.items()})
    model = model.to(args.device)
    opt = m.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = m.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps)
    losses = []
    for step in range(args.steps):
        x, y = batch(step)
        x, y = m.from_numpy(x).to(args.device), m.from_numpy(y).to(args.device)
        out = model(x)
        loss = m.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y)
        opt.zero_grad()
        loss.backward()
        m.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.detach())
    return [float(v) for v in losses], {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def smoothed(xs, window):
    xs = np.asarray(xs, dtype=np.float64)
    return np.array([xs[max(0, i - window + 1):i + 1].mean() for i in range(len(xs))])


def compare(name, vt_losses, torch_losses, args):
    sv, st = smoothed(vt_losses, args.window), smoothed(torch_losses, args.window)
    gap = np.abs(sv - st) / np.maximum(np.abs(st), 1e-12)
    worst = int(gap.argmax())
    row = {"model": name, "steps": args.steps, "final_vt": float(sv[-1]), "final_torch": float(st[-1]),
           "max_smoothed_rel_gap": float(gap[worst]), "at_step": worst, "tolerance": args.tolerance,
           "ok": bool(gap[worst] <= args.tolerance)}
    return row, gap


def plot(path, name, vt_losses, torch_losses, gap, window):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    a.plot(torch_losses, lw=0.5, alpha=0.4, label="torch")
    a.plot(vt_losses, lw=0.5, alpha=0.4, label="vibetensor")
    a.plot(smoothed(torch_losses, window), label=f"torch ({window}-step mean)")
    a.plot(smoothed(vt_losses, window), label=f"vibetensor ({window}-step mean)")
    a.set_ylabel("training loss")
    a.set_title(f"{name}: same initial weights and batches")
    a.legend()
    b.plot(gap)
    b.set_ylabel("relative gap")
    b.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="minigpt,vit")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--tolerance", type=float, default=0.05, help="largest relative gap of the smoothed curves")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    import torch

    import vibetensor.torch as vt

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models.split(","):
        torch.manual_seed(0)
        t0 = time.time()
        torch_losses, _ = train(torch, name, args, None)
        torch.manual_seed(0)  # the same seed builds the same initial weights again, for vibetensor
        init = {k: v.numpy() for k, v in setup(name, torch, args)[0].state_dict().items()}
        vt_losses, _ = train(vt, name, args, init)
        row, gap = compare(name, vt_losses, torch_losses, args)
        row["seconds"] = round(time.time() - t0, 1)
        stem = f"long_horizon_{name}_{args.device.replace(':', '')}"
        (out / f"{stem}.json").write_text(json.dumps({**row, "vt": vt_losses, "torch": torch_losses}) + "\n")
        row["plot"] = str(out / f"{stem}.png") if plot(out / f"{stem}.png", name, vt_losses, torch_losses, gap,
                                                      args.window) else None
        rows.append(row)
        print(f"{name:<8} final loss vt {row['final_vt']:.4f} torch {row['final_torch']:.4f}  max smoothed gap "
              f"{row['max_smoothed_rel_gap']:.2%} at step {row['at_step']}  {'OK' if row['ok'] else 'FAIL'} "
              f"(tolerance {args.tolerance:.0%}; {row['seconds']} s)")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
