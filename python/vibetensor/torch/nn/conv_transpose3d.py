"""F.conv_transpose3d and nn.ConvTranspose3d, torch-shaped, composed from conv_transpose2d (so differentiable).

Input depth plane i with depth tap t lands on output depth i*stride + t*dilation - padding. So one conv_transpose2d
over every depth plane (batch and depth merged) with the kd taps as extra output channels gives each plane's
contribution per tap; each tap's planes are then spread `stride` apart (zeros between), shifted by t*dilation, and
summed; the depth padding is cropped and output_padding appended as zeros (as torch's, those rows get the bias only).
"""
from . import functional_conv as _fc
from . import functional_conv_more as _fm
from .conv_more_layers import _ConvTransposeNd
from .functional_conv import _batched_n, _ntuple


def _T():
    from .. import _functions
    return _functions


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    x, unbatched = _batched_n(input, "conv_transpose3d", 3)
    if weight.dim() != 5:
        raise RuntimeError(f"conv_transpose3d expects a 5-D weight [in, out / groups, kd, kh, kw], got "
                           f"{list(weight.shape)}")
    s, p = _ntuple(stride, 3, "stride"), _ntuple(padding, 3, "padding")
    op, d = _ntuple(output_padding, 3, "output_padding"), _ntuple(dilation, 3, "dilation")
    N, C, D, H, W = x.shape
    Ci, Og, kd, kh, kw = weight.shape
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if C != Ci:
        raise RuntimeError(f"conv_transpose3d: Given transposed=1, weight of size {list(weight.shape)}, expected input "
                           f"{list(x.shape)} to have {Ci} channels, but got {C} channels instead")
    if s[0] <= 0 or d[0] <= 0:
        raise RuntimeError(f"conv_transpose3d: stride and dilation must be positive, got stride={s}, dilation={d}")
    if p[0] < 0 or op[0] < 0:
        raise RuntimeError("conv_transpose3d: negative padding is not supported")
    if op[0] >= s[0] and op[0] >= d[0]:
        raise RuntimeError(f"conv_transpose3d: output padding must be smaller than either stride or dilation, but got "
                           f"output_padding={op}, stride={s}, dilation={d}")
    od = (D - 1) * s[0] - 2 * p[0] + d[0] * (kd - 1) + op[0] + 1
    if od <= 0:
        raise RuntimeError(f"conv_transpose3d: Given input size per channel {[D, H, W]}, calculated output size "
                           f"{[od, '...']} is too small")
    T = _T()
    G = groups
    # the depth taps as extra output channels: group g's channels are then (og, t) pairs, g-major, as y's reshape
    w2 = weight.reshape(Ci, Og * kd, kh, kw)
    planes = x.transpose(1, 2).reshape(N * D, C, H, W)
    y = _fm._transpose_nd(planes, w2, None, s[1:], p[1:], op[1:], G, d[1:], 3, "conv_transpose3d")
    oh, ow = y.shape[2], y.shape[3]
    y = y.reshape(N, D, G, Og, kd, oh, ow)
    full = (D - 1) * s[0] + d[0] * (kd - 1) + 1  # the uncropped depth
    out = None
    for t in range(kd):
        yt = y.select(4, t).reshape(N, D, G * Og, oh, ow).transpose(1, 2)  # [N, O, D, oh, ow]
        if s[0] > 1:  # spread the planes s apart: each followed by s-1 zero planes, the last ones dropped
            z = T.zeros(N, G * Og, D, s[0] - 1, oh, ow, dtype=yt.dtype, device=yt.device)
            yt = T.cat([yt.unsqueeze(3), z], 3).reshape(N, G * Og, D * s[0], oh, ow).narrow(2, 0, (D - 1) * s[0] + 1)
        before = t * d[0]
        yt = _fc.pad(yt, [0, 0, 0, 0, before, full - before - yt.shape[2]])
        out = yt if out is None else out + yt
    keep = min(full - p[0], od)
    out = out.narrow(2, p[0], keep)
    if keep < od:  # output_padding past the last tap's reach: zero rows
        out = _fc.pad(out, [0, 0, 0, 0, 0, od - keep])
    if bias is not None:
        out = out + bias.reshape(1, G * Og, 1, 1, 1)
    return out.squeeze(0) if unbatched else out


class ConvTranspose3d(_ConvTransposeNd):
    _n = 3

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError("ConvTranspose3d: padding must be an int or a tuple of ints, not a string")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype, True, output_padding)

    def forward(self, input, output_size=None):
        return conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding,
                                self._out_pad(input, output_size), self.groups, self.dilation)
