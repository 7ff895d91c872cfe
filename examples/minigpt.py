"""MiniGPT: a character-level transformer language model trained through vibetensor's autograd on text the
repository ships (its README and Python sources), self-checking: the final loss must fall below --target.

  python examples/minigpt.py [--device cuda] [--steps 300] [--layers 2] [--d 64]

Everything is torch-shaped (vt.nn modules, F.scaled_dot_product_attention, F.cross_entropy, vt.optim.AdamW), so
the same file runs under torch by changing the import."""
import argparse
import math
import pathlib
import sys
import time

import vibetensor.torch as vt

F = vt.nn.functional


def model_class(torchlike):
    """The MiniGPT class over a torch-shaped module: vibetensor.torch here, torch in benchmarks/train_step.py."""
    nn, F = torchlike.nn, torchlike.nn.functional

    class Block(nn.Module):
        def __init__(self, d, heads, dropout):
            super().__init__()
            self.heads, self.dropout = heads, dropout
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
            return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))

    class MiniGPT(nn.Module):
        def __init__(self, vocab, d, heads, layers, context, dropout=0.0):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
            self.blocks = nn.ModuleList([Block(d, heads, dropout) for _ in range(layers)])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

        def forward(self, idx):
            _, t = idx.shape
            x = self.tok(idx) + self.pos(torchlike.arange(t, device=idx.device))
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x))

    return MiniGPT


MiniGPT = model_class(vt)


def corpus():
    root = pathlib.Path(__file__).resolve().parent.parent
    return "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "python").rglob("*.py"))][:40])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--target", type=float, default=2.5, help="the final loss must fall below this (nats/char)")
    args = ap.parse_args(argv)
    text = corpus()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = vt.tensor([stoi[c] for c in text]).to(args.device)
    vt.manual_seed(0)
    model = MiniGPT(len(chars), args.d, args.heads, args.layers, args.context).to(args.device)
    opt = vt.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    print(f"MiniGPT: {sum(p.numel() for p in model.parameters())} parameters, vocab {len(chars)}, "
          f"{len(text)} chars, device {args.device}; uniform loss would be {math.log(len(chars)):.3f}")
    t0, losses = time.time(), []
    for step in range(args.steps):
        starts = vt.randint(0, len(text) - args.context - 1, (args.batch,)).tolist()
        x = vt.stack([data[s:s + args.context] for s in starts])
        y = vt.stack([data[s + 1:s + 1 + args.context] for s in starts])
        loss = F.cross_entropy(model(x).reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {losses[-1]:.3f}  {time.time() - t0:.1f} s")
    final = sum(losses[-10:]) / min(10, len(losses))
    ok = final < args.target
    print(f"final loss (mean of last 10 steps) {final:.3f}: {'OK' if ok else 'FAIL'} (target < {args.target})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
