"""Runs an unmodified public GPT model file (nanoGPT's model.py, or one shaped like it: GPT, GPTConfig,
configure_optimizers, generate) with torch and with vibetensor swapped in for `import torch`, from the same
weights, and checks that losses, several AdamW steps and greedy generation agree. The file is not part of
this repository: pass its path (e.g. a checkout of github.com/karpathy/nanoGPT).

  python scripts/public_model_check.py path/to/nanoGPT/model.py [--steps 3]
Exit status 1 on a mismatch."""
import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "models"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_file")
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args(argv)
    import torch
    from swap_import import load

    import vibetensor.torch as vt

    tmod, vmod = load(args.model_file, torch), load(args.model_file, vt)
    cfg = dict(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32, dropout=0.0, bias=True)
    torch.manual_seed(0)
    tm, vm = tmod.GPT(tmod.GPTConfig(**cfg)), vmod.GPT(vmod.GPTConfig(**cfg))
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    topt = tm.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    vopt = vm.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    rng = np.random.default_rng(0)
    ok = True
    for step in range(args.steps):
        x, y = rng.integers(0, 50, (2, 12)), rng.integers(0, 50, (2, 12))
        tl = tm(torch.from_numpy(x), torch.from_numpy(y))[1]
        vl = vm(vt.from_numpy(x), vt.from_numpy(y))[1]
        same = abs(vl.item() - tl.item()) <= 1e-4 * abs(tl.item())
        ok &= same
        print(f"step {step}: loss vibetensor {vl.item():.6f} torch {tl.item():.6f} {'OK' if same else 'MISMATCH'}")
        for opt, loss in ((topt, tl), (vopt, vl)):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    tg = tm.generate(torch.tensor([[1, 2]]), 8, top_k=1).tolist()
    vg = vm.generate(vt.tensor([[1, 2]]), 8, top_k=1).tolist()
    ok &= tg == vg
    print(f"greedy generation: {'OK' if tg == vg else 'MISMATCH'} {vg} vs {tg}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
