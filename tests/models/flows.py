"""Normalizing flows as public generative-modelling code writes them: Glow (ActNorm with data-dependent
initialisation, invertible 1x1 convolutions in the plain and the LU-decomposed form, affine coupling with
sigmoid scales, squeeze and a multi-scale split), RealNVP (checkerboard and channel-masked couplings with tanh
scales), dequantisation and bits per dim, and MAF (MADE blocks with registered autoregressive masks and their
sequential inverse). Every layer returns (output, logdet) forward and has reverse()."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Normal


def squeeze2d(x):
    # [B, C, H, W] -> [B, 4C, H/2, W/2]: each 2x2 patch becomes four channels
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, h // 2, w // 2)


def unsqueeze2d(x):
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(b, c // 4, h * 2, w * 2)


class ActNorm(nn.Module):
    """Per-channel affine whose loc/scale are set from the first batch so that its output has zero mean and unit
    variance per channel (Glow section 3.1)."""

    def __init__(self, num_channels):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, num_channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.loc.data.copy_(-mean)
        self.logs.data.copy_(torch.log(1.0 / (std + 1e-6)))
        self.initialized.fill_(1)

    def forward(self, x):
        if self.initialized.item() == 0 and self.training:
            self.initialize(x)
        h, w = x.shape[2:]
        y = (x + self.loc) * torch.exp(self.logs)
        return y, h * w * torch.sum(self.logs)

    def reverse(self, y):
        return y * torch.exp(-self.logs) - self.loc


class InvConv2d(nn.Module):
    """Invertible 1x1 convolution with a dense weight, initialised as a random rotation."""

    def __init__(self, num_channels):
        super().__init__()
        w, _ = torch.linalg.qr(torch.randn(num_channels, num_channels))
        self.weight = nn.Parameter(w)

    def forward(self, x):
        c, h, w = x.shape[1:]
        logdet = h * w * torch.slogdet(self.weight)[1]
        return F.conv2d(x, self.weight.view(c, c, 1, 1)), logdet

    def reverse(self, y):
        c = y.shape[1]
        return F.conv2d(y, torch.inverse(self.weight).view(c, c, 1, 1))


class InvConv2dLU(nn.Module):
    """The 1x1 convolution parameterised as W = P L (U + diag(sign(s) exp(log|s|))): the log-determinant is
    sum(log|s|), no O(C^3) determinant per step."""

    def __init__(self, num_channels, unpack=False):
        super().__init__()
        w, _ = torch.linalg.qr(torch.randn(num_channels, num_channels))
        # both spellings public code uses: the packed factorisation unpacked, or linalg.lu directly
        p, lower, upper = torch.lu_unpack(*torch.linalg.lu_factor(w)) if unpack else torch.linalg.lu(w)
        s = torch.diag(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("l_mask", torch.tril(torch.ones(num_channels, num_channels), -1))
        self.register_buffer("eye", torch.eye(num_channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self):
        lower = self.lower * self.l_mask + self.eye
        upper = self.upper * self.l_mask.T + torch.diag_embed(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x):
        c, h, w = x.shape[1:]
        return F.conv2d(x, self.weight().view(c, c, 1, 1)), h * w * self.log_s.sum()

    def reverse(self, y):
        c = y.shape[1]
        return F.conv2d(y, torch.linalg.inv(self.weight()).view(c, c, 1, 1))


class ZeroConv2d(nn.Conv2d):
    """Last layer of a coupling network, zero-initialised so every coupling starts as the identity."""

    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


def coupling_net(in_channels, hidden, out_channels):
    return nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True), ZeroConv2d(hidden, out_channels))


class AffineCoupling(nn.Module):
    """Glow's coupling: half the channels condition a shift and a sigmoid(. + 2) scale of the other half."""

    def __init__(self, num_channels, hidden=16):
        super().__init__()
        self.net = coupling_net(num_channels // 2, hidden, num_channels)

    def forward(self, x):
        x_a, x_b = x.chunk(2, 1)
        h = self.net(x_a)
        shift, scale = h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0)
        y_b = (x_b + shift) * scale
        return torch.cat([x_a, y_b], 1), torch.log(scale).flatten(1).sum(-1)

    def reverse(self, y):
        y_a, y_b = y.chunk(2, 1)
        h = self.net(y_a)
        shift, scale = h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0)
        return torch.cat([y_a, y_b / scale - shift], 1)


def checkerboard_mask(h, w, parity):
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((ii + jj) % 2 == parity).float().view(1, 1, h, w)


def channel_mask(c, parity):
    mask = torch.zeros(1, c, 1, 1)
    mask[:, :c // 2] = 1.0
    return mask if parity == 0 else 1.0 - mask


class MaskedCoupling(nn.Module):
    """RealNVP's coupling: y = b*x + (1-b)*(x*exp(s(b*x)) + t(b*x)) with a binary mask b (checkerboard or
    channel) and s = scale * tanh(.) keeping the early steps stable."""

    def __init__(self, num_channels, mask, hidden=16):
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = coupling_net(num_channels, hidden, 2 * num_channels)
        self.scale = nn.Parameter(torch.ones(1, num_channels, 1, 1))

    def _st(self, x_masked):
        s, t = self.net(x_masked).chunk(2, 1)
        s = self.scale * torch.tanh(s) * (1 - self.mask)
        return s, t * (1 - self.mask)

    def forward(self, x):
        s, t = self._st(x * self.mask)
        y = x * self.mask + (1 - self.mask) * (x * torch.exp(s) + t)
        return y, s.sum(dim=[1, 2, 3])

    def reverse(self, y):
        s, t = self._st(y * self.mask)
        return y * self.mask + (1 - self.mask) * (y - t) * torch.exp(-s)


class FlowStep(nn.Module):
    def __init__(self, num_channels, lu=True, hidden=16):
        super().__init__()
        self.actnorm = ActNorm(num_channels)
        self.invconv = InvConv2dLU(num_channels) if lu else InvConv2d(num_channels)
        self.coupling = AffineCoupling(num_channels, hidden)

    def forward(self, x):
        logdet = 0
        for layer in (self.actnorm, self.invconv, self.coupling):
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def reverse(self, y):
        for layer in (self.coupling, self.invconv, self.actnorm):
            y = layer.reverse(y)
        return y


class Glow(nn.Module):
    """Multi-scale Glow: each level squeezes, runs `depth` steps, and (except the last) factors half the
    channels out to the standard Normal prior."""

    def __init__(self, in_channels=3, levels=2, depth=2, lu=True, hidden=16):
        super().__init__()
        self.levels = nn.ModuleList()
        c = in_channels
        for i in range(levels):
            c *= 4
            self.levels.append(nn.ModuleList([FlowStep(c, lu, hidden) for _ in range(depth)]))
            if i < levels - 1:
                c //= 2

    def forward(self, x):
        """The latents (one per level) and the log-determinant per sample."""
        logdet = torch.zeros(x.shape[0], device=x.device)
        zs = []
        for i, steps in enumerate(self.levels):
            x = squeeze2d(x)
            for step in steps:
                x, ld = step(x)
                logdet = logdet + ld
            if i < len(self.levels) - 1:
                x, z = x.chunk(2, 1)
                zs.append(z)
        zs.append(x)
        return zs, logdet

    def reverse(self, zs):
        x = zs[-1]
        for i in range(len(self.levels) - 1, -1, -1):
            if i < len(self.levels) - 1:
                x = torch.cat([x, zs[i]], 1)
            for step in reversed(self.levels[i]):
                x = step.reverse(x)
            x = unsqueeze2d(x)
        return x

    @torch.no_grad()
    def sample(self, n, image_shape, temperature=0.7, generator=None):
        """Images from latents drawn at reduced temperature (scaled standard Normals), one per level."""
        c, h, w = image_shape
        shapes = []
        for i in range(len(self.levels)):
            c, h, w = c * 4, h // 2, w // 2
            if i < len(self.levels) - 1:
                c //= 2
            shapes.append((n, c, h, w))
        device = next(self.parameters()).device
        zs = [torch.randn(s, generator=generator, device=device) * temperature for s in shapes]
        return self.reverse(zs)

    def log_prob(self, x):
        zs, logdet = self(x)
        log_pz = sum(Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).flatten(1).sum(-1) for z in zs)
        return log_pz + logdet


class RealNVP(nn.Module):
    """One RealNVP scale: three alternating checkerboard couplings, squeeze, three alternating channel
    couplings."""

    def __init__(self, in_channels=2, size=4, hidden=16):
        super().__init__()
        self.checker = nn.ModuleList([MaskedCoupling(in_channels, checkerboard_mask(size, size, i % 2), hidden)
                                      for i in range(3)])
        c = 4 * in_channels
        self.channel = nn.ModuleList([MaskedCoupling(c, channel_mask(c, i % 2), hidden) for i in range(3)])

    def forward(self, x):
        logdet = torch.zeros(x.shape[0], device=x.device)
        for layer in self.checker:
            x, ld = layer(x)
            logdet += ld
        x = squeeze2d(x)
        for layer in self.channel:
            x, ld = layer(x)
            logdet += ld
        return x, logdet

    def reverse(self, z):
        for layer in reversed(self.channel):
            z = layer.reverse(z)
        z = unsqueeze2d(z)
        for layer in reversed(self.checker):
            z = layer.reverse(z)
        return z

    def log_prob(self, x):
        z, logdet = self(x)
        return Normal(0.0, 1.0).log_prob(z).sum(dim=[1, 2, 3]) + logdet


def dequantize(x, noise, n_bins=256):
    """Integer pixels in [0, n_bins) -> continuous values in [-0.5, 0.5) with uniform noise in [0, 1)."""
    return (x + noise) / n_bins - 0.5


def bits_per_dim(log_prob, x, n_bins=256):
    # the density of the dequantised data in [-0.5, 0.5) is n_bins^D times that of the discrete data
    num_dims = x[0].numel()
    log_px = log_prob - num_dims * math.log(n_bins)
    return (-log_px / (num_dims * math.log(2))).mean()


class MaskedLinear(nn.Linear):
    """A Linear layer whose weight is multiplied by a fixed 0/1 mask (a registered buffer)."""

    def __init__(self, in_features, out_features, mask):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask)

    def forward(self, x):
        return F.linear(x, self.mask * self.weight, self.bias)


class MADE(nn.Module):
    """An autoregressive network: output i (each of mu and log-scale) depends only on inputs < i."""

    def __init__(self, dim, hidden=24):
        super().__init__()
        d_in = torch.arange(1, dim + 1)
        d_hidden = torch.arange(hidden) % max(dim - 1, 1) + 1
        m1 = (d_hidden[:, None] >= d_in[None, :]).float()
        m2 = (d_hidden[:, None] >= d_hidden[None, :]).float()
        m_out = (d_in[:, None] > d_hidden[None, :]).float().repeat(2, 1)
        self.net = nn.Sequential(MaskedLinear(dim, hidden, m1), nn.ReLU(), MaskedLinear(hidden, hidden, m2),
                                 nn.ReLU(), MaskedLinear(hidden, 2 * dim, m_out))

    def forward(self, x):
        mu, alpha = self.net(x).chunk(2, -1)
        return mu, alpha


class MAFBlock(nn.Module):
    """u = (x - mu(x)) * exp(-alpha(x)): the density pass is one MADE call, sampling is sequential."""

    def __init__(self, dim, hidden=24):
        super().__init__()
        self.made = MADE(dim, hidden)

    def forward(self, x):
        mu, alpha = self.made(x)
        alpha = torch.clamp(alpha, -5.0, 5.0)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(-1)

    def reverse(self, u):
        x = torch.zeros_like(u)
        for i in range(u.shape[-1]):
            mu, alpha = self.made(x)
            alpha = torch.clamp(alpha, -5.0, 5.0)
            x[:, i] = u[:, i] * torch.exp(alpha[:, i]) + mu[:, i]
        return x


class MAF(nn.Module):
    def __init__(self, dim, num_blocks=3, hidden=24):
        super().__init__()
        self.blocks = nn.ModuleList([MAFBlock(dim, hidden) for _ in range(num_blocks)])
        self.register_buffer("base_loc", torch.zeros(dim))
        self.register_buffer("base_scale", torch.ones(dim))

    def forward(self, x):
        logdet = torch.zeros(x.shape[0], device=x.device)
        for block in self.blocks:
            x, ld = block(x)
            logdet = logdet + ld
            x = x.flip(-1)  # reverse the order so the next block conditions the other way round
        return x, logdet

    def reverse(self, u):
        for block in reversed(self.blocks):
            u = block.reverse(u.flip(-1))
        return u

    def log_prob(self, x):
        u, logdet = self(x)
        return Normal(self.base_loc, self.base_scale).log_prob(u).sum(-1) + logdet

    @torch.no_grad()
    def sample(self, n, generator=None):
        u = torch.randn(n, self.base_loc.shape[0], generator=generator, device=self.base_loc.device)
        return self.reverse(u)
