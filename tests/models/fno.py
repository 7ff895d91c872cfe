"""A 1-D Fourier Neural Operator written the way public FNO code is written (imports torch only; loaded with
vibetensor swapped in by tests/models/swap_import.py):
  - the input function and the grid coordinate lifted by a Linear, a stack of Fourier layers (a spectral
    convolution plus a pointwise 1x1 Conv1d, GELU), and a two-layer projection;
  - the spectral convolution the way the FNO paper's code does it: torch.fft.rfft, complex (cfloat) weights
    mixing the channels of the lowest `modes` frequencies by einsum, the rest zeroed, torch.fft.irfft back;
  - the same layer without complex tensors ("dft"): real cosine/sine basis matrices built from torch.arange,
    the real and imaginary parts of the weights as two real Parameters, and the complex product written out;
    given the same weights the two agree.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class SpectralConv1d(nn.Module):
    def __init__(self, in_ch, out_ch, modes):
        super().__init__()
        self.in_ch, self.out_ch, self.modes = in_ch, out_ch, modes
        self.scale = 1 / (in_ch * out_ch)
        self.weights = nn.Parameter(self.scale * torch.rand(in_ch, out_ch, modes, dtype=torch.cfloat))

    def forward(self, x):
        b, n = x.shape[0], x.shape[-1]
        x_ft = torch.fft.rfft(x)
        out_ft = torch.zeros(b, self.out_ch, n // 2 + 1, device=x.device, dtype=torch.cfloat)
        out_ft[:, :, :self.modes] = torch.einsum("bix,iox->box", x_ft[:, :, :self.modes], self.weights)
        return torch.fft.irfft(out_ft, n=n)


class SpectralConv1dDFT(nn.Module):
    """rfft / irfft as products with real basis matrices: X_k = sum_j x_j e^{-2 pi i jk/n}; the inverse of a
    half spectrum counts the modes 1..n/2-1 twice (their conjugates) and drops the imaginary part of mode 0."""

    def __init__(self, in_ch, out_ch, modes):
        super().__init__()
        self.in_ch, self.out_ch, self.modes = in_ch, out_ch, modes
        scale = 1 / (in_ch * out_ch)
        self.weights_re = nn.Parameter(scale * torch.rand(in_ch, out_ch, modes))
        self.weights_im = nn.Parameter(scale * torch.rand(in_ch, out_ch, modes))

    def basis(self, n, dtype, device):
        j = torch.arange(n, dtype=dtype, device=device)
        k = torch.arange(self.modes, dtype=dtype, device=device)
        angle = 2 * math.pi * torch.outer(j, k) / n  # [n, modes]
        return torch.cos(angle), torch.sin(angle)

    def forward(self, x):
        n = x.shape[-1]
        cos, sin = self.basis(n, x.dtype, x.device)
        x_re, x_im = x @ cos, -(x @ sin)  # [b, in, modes]
        out_re = torch.einsum("bix,iox->box", x_re, self.weights_re) - torch.einsum("bix,iox->box", x_im,
                                                                                      self.weights_im)
        out_im = torch.einsum("bix,iox->box", x_re, self.weights_im) + torch.einsum("bix,iox->box", x_im,
                                                                                      self.weights_re)
        # irfft weights: 1 for mode 0 (and n/2), 2 for the others; mode 0's imaginary part is ignored
        w = torch.full((self.modes,), 2.0, dtype=x.dtype, device=x.device)
        w[0] = 1.0
        if n % 2 == 0 and self.modes > n // 2:
            w[n // 2] = 1.0
        out_im = out_im * (torch.arange(self.modes, device=x.device) > 0).to(x.dtype)
        return ((out_re * w) @ cos.t() - (out_im * w) @ sin.t()) / n


class FNO1d(nn.Module):
    def __init__(self, modes=4, width=8, layers=2, spectral="fft"):
        super().__init__()
        conv = SpectralConv1d if spectral == "fft" else SpectralConv1dDFT
        self.lift = nn.Linear(2, width)  # (a(x), x)
        self.spectral = nn.ModuleList([conv(width, width, modes) for _ in range(layers)])
        self.pointwise = nn.ModuleList([nn.Conv1d(width, width, 1) for _ in range(layers)])
        self.proj1 = nn.Linear(width, 2 * width)
        self.proj2 = nn.Linear(2 * width, 1)

    @staticmethod
    def grid(x):
        b, n = x.shape[0], x.shape[1]
        return torch.linspace(0, 1, n, dtype=x.dtype, device=x.device).reshape(1, n, 1).repeat([b, 1, 1])

    def forward(self, a):
        """a [b, n, 1] -> u [b, n, 1]."""
        x = self.lift(torch.cat((a, self.grid(a)), dim=-1)).permute(0, 2, 1)
        for i, (spec, pw) in enumerate(zip(self.spectral, self.pointwise)):
            x = spec(x) + pw(x)
            if i < len(self.spectral) - 1:
                x = F.gelu(x)
        x = F.gelu(self.proj1(x.permute(0, 2, 1)))
        return self.proj2(x)


def relative_l2(pred, target):
    """The FNO papers' loss: mean over the batch of |pred - target| / |target|."""
    b = pred.shape[0]
    diff = torch.norm(pred.reshape(b, -1) - target.reshape(b, -1), 2, 1)
    return torch.mean(diff / torch.norm(target.reshape(b, -1), 2, 1))
