"""A small ConvNeXt (V1 blocks with layer scale, V2 blocks with GRN) written the way public ConvNeXt code is
written (imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - block: 7x7 depthwise conv, permute to channels-last, LayerNorm, Linear 4x with GELU, (V2: global response
    normalisation), Linear back, (V1: layer scale gamma), permute back, residual through DropPath;
  - DropPath (stochastic depth) written by hand: one Bernoulli keep per example, scaled by 1 / keep_prob, drawn
    from a given generator so that runs can be reproduced;
  - a channels-first LayerNorm for the stem and the downsampling layers, global average pooling, a head;
  - a model EMA through torch.optim.swa_utils.AveragedModel.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def drop_path(x, p, training, generator=None):
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)  # one draw per example, broadcast over the rest
    mask = torch.rand(shape, dtype=x.dtype, device=x.device, generator=generator) < keep
    return x * mask.to(x.dtype) / keep


class DropPath(nn.Module):
    def __init__(self, p=0.0):
        super().__init__()
        self.p = p
        self.generator = None

    def forward(self, x):
        return drop_path(x, self.p, self.training, self.generator)

    def extra_repr(self):
        return f"p={self.p}"


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of [B, C, H, W], written out as the ConvNeXt code does."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2) on channels-last input [B, H, W, C]."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.eps = eps

    def forward(self, x):
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        return self.gamma * (x * nx) + self.beta + x


class Block(nn.Module):
    def __init__(self, dim, drop_path=0.0, layer_scale=1e-6, v2=False):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim) if v2 else nn.Identity()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim)) if layer_scale > 0 and not v2 else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)  # channels-last for the norm and the Linear layers
        x = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(x)))))
        if self.gamma is not None:
            x = self.gamma * x
        return shortcut + self.drop_path(x.permute(0, 3, 1, 2))


class ConvNeXt(nn.Module):
    def __init__(self, in_ch=3, classes=4, depths=(1, 2), dims=(8, 16), drop_path_rate=0.0, layer_scale=1e-6,
                 v2=False):
        super().__init__()
        self.downsample = nn.ModuleList([nn.Sequential(nn.Conv2d(in_ch, dims[0], 2, stride=2),
                                                       LayerNorm2d(dims[0]))])
        for i in range(1, len(dims)):
            self.downsample.append(nn.Sequential(LayerNorm2d(dims[i - 1]),
                                                 nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)))
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()  # deeper blocks are dropped more often
        self.stages = nn.ModuleList()
        k = 0
        for i, depth in enumerate(depths):
            self.stages.append(nn.Sequential(*[Block(dims[i], rates[k + j], layer_scale, v2) for j in range(depth)]))
            k += depth
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], classes)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.2)
            nn.init.zeros_(m.bias)

    def set_generator(self, generator):
        for m in self.modules():
            if isinstance(m, DropPath):
                m.generator = generator

    def forward(self, x):
        for down, stage in zip(self.downsample, self.stages):
            x = stage(down(x))
        return self.head(self.norm(x.mean((-2, -1))))

    def loss(self, x, y, label_smoothing=0.0):
        return F.cross_entropy(self(x), y, label_smoothing=label_smoothing)


def model_ema(model, decay=0.9):
    """An exponential moving average of the weights, the way ConvNeXt training keeps one."""
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
