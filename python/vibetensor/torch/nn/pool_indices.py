"""The pools' *_with_indices names (max_pool1d/2d/3d_with_indices, adaptive_max_pool1d/2d/3d_with_indices: always a
(values, indices) pair, as torch's), F.adaptive_max_pool3d and nn.AdaptiveMaxPool3d.

adaptive_max_pool3d is composed: adaptive_max_pool2d over (H, W) of every depth plane, then, per output depth, the
max over that depth window (torch's windows: floor(i*D/od) to ceil((i+1)*D/od)); the flat index is
depth * H * W + the plane's index. Differentiable through max and the 2-D pool."""
from . import functional_conv as _fc
from . import functional_conv3d as _f3
from . import functional_conv_more as _fm
from .conv_more_layers import AdaptiveMaxPool2d


def _T():
    from .. import _functions
    return _functions


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    return _fm.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    return _fc.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    return _f3.max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=False):
    return _fm.adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=False):
    return _fm.adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    if input.dim() not in (4, 5):
        raise RuntimeError(f"adaptive_max_pool3d(): Expected 4D or 5D tensor, but got: {list(input.shape)}")
    sizes = [output_size] * 3 if isinstance(output_size, int) or output_size is None else list(output_size)
    if len(sizes) != 3:
        raise RuntimeError("adaptive_max_pool3d(): internal error: output_size.size() must be 3")
    for d in range(1 if input.dim() == 5 else 0, input.dim()):
        if input.shape[d] == 0:
            raise RuntimeError(f"adaptive_max_pool3d(): Expected input to have non-zero size for non-batch "
                               f"dimensions, but input has sizes {list(input.shape)} with dimension {d} being empty")
    unbatched = input.dim() == 4
    x = input.unsqueeze(0) if unbatched else input
    N, C, D, H, W = x.shape
    od, oh, ow = [x.shape[2 + i] if s is None else s for i, s in enumerate(sizes)]
    if od <= 0 or oh <= 0 or ow <= 0:
        raise RuntimeError(f"adaptive_max_pool3d(): output_size must be positive, got {[od, oh, ow]}")
    T = _T()
    v, j = _fm.adaptive_max_pool2d(x.reshape(N, C * D, H, W), [oh, ow], True)
    v, j = v.reshape(N, C, D, oh, ow), j.reshape(N, C, D, oh, ow)
    vals, idxs = [], []
    for d0, d1 in _fm._adaptive_windows(D, od):
        m, k = v.narrow(2, d0, d1 - d0).max(2)  # [N, C, oh, ow]; k: the depth within the window
        vals.append(m)
        idxs.append((k + d0) * (H * W) + j.narrow(2, d0, d1 - d0).gather(2, k.unsqueeze(2)).squeeze(2))
    out, idx = T.stack(vals, 2), T.stack(idxs, 2)
    return (out.squeeze(0), idx.squeeze(0)) if unbatched else (out, idx)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    out, idx = adaptive_max_pool3d_with_indices(input, output_size)
    return (out, idx) if return_indices else out


class AdaptiveMaxPool3d(AdaptiveMaxPool2d):
    def forward(self, input):
        return adaptive_max_pool3d(input, self.output_size, self.return_indices)
