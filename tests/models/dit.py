"""A small diffusion transformer (DiT) written the way public DiT code is written (imports torch only; loaded
with vibetensor swapped in by tests/models/swap_import.py):
  - patchify: F.unfold into non-overlapping p x p patches then a Linear (equivalently a stride-p conv);
    unpatchify: reshape the tokens back to [B, h, w, p, p, C] and einsum them into an image;
  - a sinusoidal timestep embedding and a class embedding summed into the conditioning vector c;
  - blocks with adaLN-Zero: a Linear of SiLU(c), zero-initialised, chunked into shift / scale / gate for the
    attention and the MLP; LayerNorm without affine parameters, modulated as x * (1 + scale) + shift;
  - attention with F.scaled_dot_product_attention; a final modulated layer, also zero-initialised, which with
    learn_sigma also predicts the variance (split off with chunk); classifier-free guidance.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=2.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, dim, patch, out_ch):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, patch * patch * out_ch)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, size=8, patch=2, in_ch=3, dim=32, depth=2, heads=4, classes=5, zero_init=True,
                 learn_sigma=False):
        super().__init__()
        self.patch, self.in_ch, self.side = patch, in_ch, size // patch
        self.out_ch = 2 * in_ch if learn_sigma else in_ch  # the noise, then (learn_sigma) the variance
        self.x_embed = nn.Linear(in_ch * patch * patch, dim)
        self.pos_embed = nn.Parameter(torch.randn(1, self.side ** 2, dim) * 0.02)
        self.t_embed = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.y_embed = nn.Embedding(classes + 1, dim)  # the last row is the "no class" of classifier-free guidance
        self.blocks = nn.ModuleList([DiTBlock(dim, heads) for _ in range(depth)])
        self.final = FinalLayer(dim, patch, self.out_ch)
        self.dim = dim
        if zero_init:  # adaLN-Zero: every block starts as the identity, the output as zero
            for block in self.blocks:
                nn.init.zeros_(block.adaLN_modulation[-1].weight)
                nn.init.zeros_(block.adaLN_modulation[-1].bias)
            nn.init.zeros_(self.final.adaLN_modulation[-1].weight)
            nn.init.zeros_(self.final.adaLN_modulation[-1].bias)
            nn.init.zeros_(self.final.linear.weight)
            nn.init.zeros_(self.final.linear.bias)

    def patchify(self, x):
        """[B, C, H, W] -> [B, (H/p)(W/p), C p p], patches in row-major order, each as (C, p, p)."""
        return F.unfold(x, kernel_size=self.patch, stride=self.patch).transpose(1, 2)

    def unpatchify(self, tokens):
        """[B, N, p p C] -> [B, C, H, W], with each token laid out as (p, p, C)."""
        b, p, c, s = tokens.shape[0], self.patch, self.out_ch, self.side
        x = tokens.reshape(b, s, s, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(b, c, s * p, s * p)

    def unpatchify_fold(self, tokens):
        """The same as unpatchify, by F.fold (the inverse of the unfold above for non-overlapping patches)."""
        b, n, _ = tokens.shape
        cols = tokens.view(b, n, self.patch, self.patch, self.out_ch).permute(0, 4, 2, 3, 1)
        return F.fold(cols.reshape(b, -1, n), self.side * self.patch, self.patch, stride=self.patch)

    def forward(self, x, t, y):
        h = self.x_embed(self.patchify(x)) + self.pos_embed
        c = self.t_embed(timestep_embedding(t, self.dim)) + self.y_embed(y)
        for block in self.blocks:
            h = block(h, c)
        return self.unpatchify(self.final(h, c))

    def forward_with_cfg(self, x, t, y, scale):
        """Classifier-free guidance: one batched pass with and without the class."""
        null = torch.full_like(y, self.y_embed.num_embeddings - 1)
        out = self(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        eps, rest = out[:, :self.in_ch], out[:, self.in_ch:]  # guide the noise only, as DiT does
        cond, uncond = eps.chunk(2)
        guided = uncond + scale * (cond - uncond)
        return torch.cat([guided, rest.chunk(2)[0]], dim=1)
