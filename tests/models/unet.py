"""A small diffusion UNet with DDPM training and sampling, written the way public diffusion code is written
(imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - sinusoidal timestep embedding, then an MLP; every ResBlock (GroupNorm, SiLU, 3x3 conv, twice) adds a
    projection of it to its feature map, broadcast over the pixels;
  - two resolutions: down by a stride-2 conv, up by F.interpolate(nearest) + conv, skip connections
    concatenated along the channels; self-attention over the pixels at the lowest resolution;
  - GaussianDiffusion: a linear beta schedule (torch.linspace, cumprod, in float64 then stored as float32
    buffers), q_sample, the MSE-on-the-noise training loss at random timesteps, and the ancestral sampling step;
  - optional activation checkpointing of the ResBlocks (torch.utils.checkpoint, non-reentrant), attention by
    einsum or F.scaled_dot_product_attention, and an EMA copy of the weights (deepcopy + lerp_).
"""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def timestep_embedding(timesteps, dim, max_period=10000):
    """[B] integer timesteps -> [B, dim]: cos and sin at frequencies geometrically spaced from 1 to 1/max_period."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
                      / half)
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def norm(channels, groups=8):
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, in_ch, out_ch, temb_dim, dropout=0.0, use_checkpoint=False):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.norm1 = norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, out_ch)
        self.norm2 = norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x, temb):
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            # recompute the block in backward instead of keeping its activations
            return checkpoint(self._forward, x, temb, use_reentrant=False)
        return self._forward(x, temb)

    def _forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Multi-head self-attention over the H*W pixels, with 1x1 convs for q, k, v and the output."""

    def __init__(self, channels, num_heads=2, use_sdpa=False):
        super().__init__()
        self.num_heads, self.use_sdpa = num_heads, use_sdpa
        self.norm = norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        if self.use_sdpa:  # the same channel layout as below, as [B, heads, pixels, head_dim] for the fused kernel
            qkv = self.qkv(self.norm(x)).reshape(b, self.num_heads, 3, c // self.num_heads, h * w)
            q, k, v = qkv.transpose(-1, -2).unbind(2)
            out = F.scaled_dot_product_attention(q, k, v).transpose(-1, -2)
            return x + self.proj_out(out.reshape(b, c, h, w))
        qkv = self.qkv(self.norm(x)).reshape(b * self.num_heads, 3 * c // self.num_heads, h * w)
        q, k, v = qkv.chunk(3, dim=1)
        scale = 1 / math.sqrt(math.sqrt(c // self.num_heads))  # split between q and k: smaller intermediates
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        out = torch.einsum("bts,bcs->bct", weight, v)
        return x + self.proj_out(out.reshape(b, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    def __init__(self, in_channels=3, base=16, mults=(1, 2), dropout=0.0, num_heads=2, use_checkpoint=False,
                 use_sdpa=False):
        super().__init__()
        self.base = base
        temb_dim = base * 4
        self.time_embed = nn.Sequential(nn.Linear(base, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        self.conv_in = nn.Conv2d(in_channels, base, 3, padding=1)
        self.down = nn.ModuleList()
        chans, ch = [base], base
        for level, mult in enumerate(mults):
            out = base * mult
            self.down.append(ResBlock(ch, out, temb_dim, dropout, use_checkpoint))
            ch = out
            chans.append(ch)
            if level != len(mults) - 1:
                self.down.append(Downsample(ch))
                chans.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, temb_dim, dropout, use_checkpoint),
                                  AttnBlock(ch, num_heads, use_sdpa),
                                  ResBlock(ch, ch, temb_dim, dropout, use_checkpoint)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            out = base * mult
            for _ in range(2):  # one per skip this level stored (the ResBlock's, then the level input's)
                self.up.append(ResBlock(ch + chans.pop(), out, temb_dim, dropout, use_checkpoint))
                ch = out
            if level != 0:
                self.up.append(Upsample(ch))
        self.norm_out = norm(ch)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)

    def forward(self, x, timesteps):
        temb = self.time_embed(timestep_embedding(timesteps, self.base))
        h = self.conv_in(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
            skips.append(h)
        for layer in self.mid:
            h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), temb)
            else:
                h = layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def extract(values, t, shape):
    """values[t] for each batch element, shaped [B, 1, 1, ...] to broadcast against a batch of `shape`."""
    return values.gather(0, t).reshape(t.shape[0], *((1,) * (len(shape) - 1)))


class GaussianDiffusion(nn.Module):
    def __init__(self, model, timesteps=100, beta_start=1e-4, beta_end=0.02):
        super().__init__()
        self.model = model
        self.num_timesteps = timesteps
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        alphas_cumprod_prev = F.pad(alphas_cumprod[:-1], (1, 0), value=1.0)
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)

        def buffer(name, value):
            self.register_buffer(name, value.to(torch.float32))

        buffer("betas", betas)
        buffer("alphas_cumprod", alphas_cumprod)
        buffer("sqrt_alphas_cumprod", torch.sqrt(alphas_cumprod))
        buffer("sqrt_one_minus_alphas_cumprod", torch.sqrt(1.0 - alphas_cumprod))
        buffer("sqrt_recip_alphas", torch.sqrt(1.0 / alphas))
        buffer("posterior_variance", posterior_variance)

    def q_sample(self, x0, t, noise):
        return extract(self.sqrt_alphas_cumprod, t, x0.shape) * x0 + \
            extract(self.sqrt_one_minus_alphas_cumprod, t, x0.shape) * noise

    def training_loss(self, x0, t=None, noise=None, generator=None):
        """MSE between the noise added at timestep t and the model's prediction of it; t and noise are drawn
        (from `generator`) unless given."""
        if t is None:
            t = torch.randint(0, self.num_timesteps, (x0.shape[0],), device=x0.device, generator=generator)
        if noise is None:
            noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        return F.mse_loss(self.model(self.q_sample(x0, t, noise), t), noise)

    @torch.no_grad()
    def p_sample(self, x, t, noise):
        """One ancestral step x_t -> x_{t-1} (t: [B]); no noise is added where t == 0."""
        eps = self.model(x, t)
        coef = extract(self.betas, t, x.shape) / extract(self.sqrt_one_minus_alphas_cumprod, t, x.shape)
        mean = extract(self.sqrt_recip_alphas, t, x.shape) * (x - coef * eps)
        nonzero = (t != 0).float().reshape(-1, *((1,) * (x.dim() - 1)))
        return mean + nonzero * torch.sqrt(extract(self.posterior_variance, t, x.shape)) * noise

    @torch.no_grad()
    def sample(self, shape, generator=None, device="cpu", steps=None):
        """Runs the chain from pure noise down to t = 0 (or only the last `steps` of it), with `generator`."""
        x = torch.randn(shape, generator=generator, device=device)
        start = self.num_timesteps if steps is None else steps
        for i in reversed(range(start)):
            t = torch.full((shape[0],), i, device=device, dtype=torch.long)
            x = self.p_sample(x, t, torch.randn(shape, generator=generator, device=device))
        return x.clamp(-1.0, 1.0)


class EMA:
    """An exponential moving average of a model's weights, kept in a frozen deep copy for sampling."""

    def __init__(self, model, decay=0.9):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - self.decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)
