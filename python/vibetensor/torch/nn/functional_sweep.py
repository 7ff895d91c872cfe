"""torch.nn.functional names vibetensor lacked, composed over existing ops: the deprecated upsample aliases
(upsample, upsample_nearest, upsample_bilinear: align_corners=True, as torch's), pdist, the in-place
elu_/hardtanh_/leaky_relu_, feature_alpha_dropout; and the modules UpsamplingNearest2d, UpsamplingBilinear2d,
FeatureAlphaDropout."""
import warnings

from . import functional as _F
from .activation_layers import Upsample
from .functional_act import _SELU_NEG
from .functional_resample import interpolate
from .module import Module


def _T():
    from .. import _functions
    return _functions


def _deprecated(name):
    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=3)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    _deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    _deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    _deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def pdist(input, p=2):
    """The p-norm distances between every pair of rows i < j of a 2-D input, in row-major pair order (torch's),
    as the norms of the row differences (differentiable through vector_norm)."""
    if input.dim() != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.dim()}D")
    if not input.dtype.is_floating_point:
        raise RuntimeError("pdist only supports floating-point dtypes")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    T = _T()
    n = input.shape[0]
    if n < 2:
        return T.empty(0, dtype=input.dtype, device=input.device)
    from .._more_functions import triu_indices

    i, j = triu_indices(n, n, 1, device=input.device)
    diff = input.index_select(0, i) - input.index_select(0, j)
    if p == float("inf"):
        # torch's gradient gives each coordinate tied for the max the full sign of its difference (a norm's would
        # share it out): the value is the max, and the gradient flows through every tied |diff| in full
        a = diff.abs()
        top = a.amax(1, keepdim=True).detach()
        return (top + ((a - top) * (a == top).to(a.dtype)).sum(1, keepdim=True)).squeeze(1)
    from .. import linalg

    return linalg.vector_norm(diff, ord=float(p), dim=1)


def elu_(input, alpha=1.0):
    return _F.elu(input, alpha, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return _F.hardtanh(input, min_val, max_val, inplace=True)


def leaky_relu_(input, negative_slope=0.01):
    return _F.leaky_relu(input, negative_slope, inplace=True)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """alpha_dropout with one draw per feature map (the [N, C] entries, broadcast over the rest): a dropped map
    takes SELU's saturation value, and the result is scaled and shifted to keep zero mean and unit variance."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if input.dim() < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if p == 1:
        out = input * 0.0
    else:
        T = _T()
        shape = list(input.shape[:2]) + [1] * (input.dim() - 2)
        keep = (T.empty(shape, dtype=input.dtype, device=input.device).uniform_(0.0, 1.0) >= p).to(input.dtype)
        a = 1.0 / ((_SELU_NEG * _SELU_NEG * p + 1.0) * (1.0 - p)) ** 0.5
        out = input * (keep * a) + ((keep - 1.0) * (_SELU_NEG * a) + _SELU_NEG * a * p)
    return input.copy_(out) if inplace else out


class UpsamplingNearest2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class FeatureAlphaDropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return feature_alpha_dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
