"""A small vision transformer trained through vibetensor's autograd on CIFAR-10-shaped data made here (no
downloads), self-checking: 10 classes, each a fixed random 3x32x32 pattern seen through noise, random shifts
and brightness; the final training loss must fall below --target (chance is ln 10 = 2.30).

The model is torch-shaped code over a torch-like module (vibetensor.torch or torch itself, as
benchmarks/train_step.py uses it): patch embedding through Conv2d (kernel = stride = patch), a class token and
learned positions, pre-LayerNorm blocks of scaled_dot_product_attention and a GELU MLP, and a linear head.

  python examples/vit.py [--device cuda] [--steps 150] [--depth 2] [--d 64]"""
import argparse
import sys
import time

import vibetensor.torch as vt


def model_class(torchlike):
    nn, F = torchlike.nn, torchlike.nn.functional

    class Block(nn.Module):
        def __init__(self, d, heads, dropout):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))
            self.heads = heads

        def forward(self, x):
            B, T, D = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v)  # [B, heads, T, D/heads]
            x = x + self.proj(att.transpose(1, 2).reshape(B, T, D))
            return x + self.mlp(self.ln2(x))

    class ViT(nn.Module):
        def __init__(self, image=32, patch=4, channels=3, classes=10, d=64, depth=2, heads=4, dropout=0.0):
            super().__init__()
            self.patch_embed = nn.Conv2d(channels, d, kernel_size=patch, stride=patch)
            tokens = (image // patch) ** 2 + 1
            self.cls_token = nn.Parameter(torchlike.zeros(1, 1, d))
            self.pos_embed = nn.Parameter(torchlike.randn(1, tokens, d) * 0.02)
            self.blocks = nn.ModuleList([Block(d, heads, dropout) for _ in range(depth)])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, classes)

        def forward(self, images):
            x = self.patch_embed(images).flatten(2).transpose(1, 2)  # [B, patches, d]
            cls = self.cls_token.expand(x.shape[0], 1, x.shape[2])
            x = torchlike.cat([cls, x], dim=1) + self.pos_embed
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x[:, 0]))

    return ViT


def synthetic_cifar(m, n, device, prototypes):
    """n images [n, 3, 32, 32] and labels: a class's prototype, rolled by up to 1 pixel, scaled, plus noise."""
    labels = m.randint(0, 10, (n,), device=device)
    images = prototypes[labels]
    images = images.roll((int(m.randint(-1, 2, (1,)).item()), int(m.randint(-1, 2, (1,)).item())), (2, 3))
    images = images * (0.8 + 0.4 * m.rand(n, 1, 1, 1, device=device)) + 0.4 * m.randn(n, 3, 32, 32, device=device)
    return images, labels


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--target", type=float, default=0.5, help="the final loss must fall below this (nats)")
    args = ap.parse_args(argv)
    vt.manual_seed(0)
    prototypes = vt.randn(10, 3, 32, 32, device=args.device)
    model = model_class(vt)(d=args.d, depth=args.depth, heads=args.heads).to(args.device)
    opt = vt.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = vt.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.2)
    t0, losses = time.time(), []
    for step in range(args.steps):
        images, labels = synthetic_cifar(vt, args.batch, args.device, prototypes)
        loss = vt.nn.functional.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        vt.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 25 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {losses[-1]:.4f}  lr {sched.get_last_lr()[0]:.2e}  {time.time() - t0:.1f} s")
    final = sum(losses[-10:]) / len(losses[-10:])
    ok = final < args.target
    print(f"final loss (mean of the last 10 steps) {final:.4f}: {'OK' if ok else 'FAIL'} (target < {args.target})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
