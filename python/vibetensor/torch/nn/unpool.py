"""F.max_unpool1d/2d/3d and nn.MaxUnpool1d/2d/3d, torch-shaped: the partial inverse of max pooling, which puts each
input value at its index (flat over the output plane / volume, as the pools' return_indices gives) in an output of
zeros. One scatter per call (differentiable in the input: its gradient gathers at the indices)."""
import math

from ..._C.core import dtype as _dtype
from .._out import _torch_name
from .module import Module


def _T():
    from .. import _functions
    return _functions


def _ntuple(v, n):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


def _unpool_size(spatial, kernel, stride, padding, output_size):
    n = len(kernel)
    default = [(spatial[d] - 1) * stride[d] + kernel[d] - 2 * padding[d] for d in range(n)]
    if output_size is None:
        return default
    output_size = tuple(output_size) if not isinstance(output_size, (list, tuple)) else output_size  # (a Size)
    if len(output_size) == n + 2:
        output_size = output_size[2:]
    if len(output_size) != n:
        raise ValueError(f"output_size should be a sequence containing {n} or {n + 2} elements, but it has a length "
                         f"of '{len(output_size)}'")
    for d in range(n):
        lo, hi = default[d] - stride[d], default[d] + stride[d]
        if not lo < output_size[d] < hi:
            raise ValueError(f'invalid output_size "{output_size}" (dim {d} must be between {lo} and {hi})')
    return output_size


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, n):
    name = f"max_unpooling{max(n, 2)}d"
    dims = (n + 1, n + 2) if n > 1 else (2, 3)
    if input.dim() not in dims:
        raise RuntimeError(f"Input to {name} should be a {dims[0]}d or {dims[1]}d Tensor, but got a tensor with "
                           f"{input.dim()} dimensions.")
    if indices.dtype != _dtype.int64:
        raise RuntimeError(f"elements in indices should be type int64 but got: {_torch_name(indices.dtype)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor ({list(input.shape)}) "
                           f"but got indices tensor with shape: {list(indices.shape)}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"max_unpool{max(n, 2)}d" not implemented for \'{_torch_name(input.dtype)}\'')
    kernel = _ntuple(kernel_size, n)
    stride = _ntuple(stride if stride is not None else kernel_size, n)
    padding = _ntuple(padding, n)
    unbatched = input.dim() == dims[0]
    shown = list(input.shape) + ([1] if n == 1 else [])  # torch runs 1-D as 2-D with a unit last dim
    for d in range(0 if unbatched else 1, len(shown)):
        if shown[d] == 0:
            raise RuntimeError(f"{name}_forward_out_cpu(): Expected input to have non-zero size for non-batch "
                               f"dimensions, but got {shown} with dimension {d} being empty.")
    x, idx = (input.unsqueeze(0), indices.unsqueeze(0)) if unbatched else (input, indices)
    size = _unpool_size(list(x.shape[2:]), kernel, stride, padding, output_size)
    N, C = x.shape[0], x.shape[1]
    plane = math.prod(size)
    L = math.prod(x.shape[2:])  # (not -1: a batch of 0 leaves it undetermined)
    flat_idx = idx.reshape(N, C, L)
    if flat_idx.numel():
        bad_at = ((flat_idx < 0) | (flat_idx >= plane)).reshape(-1).nonzero()
        if bad_at.numel():  # torch's CPU scan keeps going and names the last one it met, in memory order
            bad = int(flat_idx.reshape(-1)[int(bad_at[-1, 0].item())].item())
            raise RuntimeError(f"Found an invalid max index: {bad} (output volumes are of size "
                               f"{'x'.join(str(s) for s in list(size) + ([1] if n == 1 else []))})")
    T = _T()
    out = T.zeros(N, C, plane, dtype=x.dtype, device=x.device).scatter(2, flat_idx, x.reshape(N, C, L))
    out = out.reshape(N, C, *size)
    return out.squeeze(0) if unbatched else out


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


class _MaxUnpoolNd(Module):
    _n = 1

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        n = self._n
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride if stride is not None else kernel_size, n)
        self.padding = _ntuple(padding, n)

    def forward(self, input, indices, output_size=None):
        return _max_unpool(input, indices, self.kernel_size, self.stride, self.padding, output_size, self._n)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    _n = 1


class MaxUnpool2d(_MaxUnpoolNd):
    _n = 2


class MaxUnpool3d(_MaxUnpoolNd):
    _n = 3
