"""conv1d, conv_transpose1d/2d, the 1-D poolings and adaptive_max_pool2d, with torch's signatures and checks.

All composed from functional_conv's ops (so differentiable through them):
  - the 1-D ops run their 2-D counterparts on an input with a unit height (kernel/stride/padding of the
    height are 1/1/0), then drop that height;
  - conv_transpose2d is the adjoint of conv2d: per group, columns = weight^T @ input ([N, Cout*kh*kw, H*W]),
    then F.fold (vt::col2im) scatters-adds them into the output plane (cropping the padding), plus the bias;
  - adaptive_avg_pool1d is one matrix product with a [L, out] averaging matrix (torch's windows: start
    floor(i*L/out), end ceil((i+1)*L/out)), so it is exact for any size;
  - adaptive_max_pool1d/2d take the max of each (variable-size) window in turn.
"""
from ..._C import core as _core
from . import functional_conv as _fc
from .. import _functions
from ._layouts import _keeps_channels_last


def _F():
    return _functions  # imported above: vibetensor.torch imports _functions before nn


def _single(v, name):
    if isinstance(v, int):
        return v
    v = list(v)
    if len(v) != 1:
        raise RuntimeError(f"{name} must be an int or a 1-tuple of ints, got {v}")
    return v[0]


def _batched1d(input, name):
    if input.dim() == 2:
        return input.unsqueeze(0), True
    if input.dim() != 3:
        raise RuntimeError(f"{name}: Expected 2D (unbatched) or 3D (batched) input, but got input of size: "
                           f"{list(input.shape)}")
    return input, False


# ---- conv1d ----
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, unbatched = _batched1d(input, "conv1d")
    if weight.dim() != 3:
        raise RuntimeError(f"conv1d expects a 3-D weight [out, in / groups, k], got {list(weight.shape)}")
    if groups > 0 and weight.shape[0] % groups:  # checked here: conv2d's message would name the input instead
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size {list(weight.shape)} instead")
    pad = padding if isinstance(padding, str) else [0, _single(padding, "padding")]
    out = _fc.conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, [1, _single(stride, "stride")], pad,
                     [1, _single(dilation, "dilation")], groups).squeeze(2)
    out = out.contiguous()  # 3-D results have no channels_last: torch's is contiguous whatever the input's strides
    return out.squeeze(0) if unbatched else out


# ---- transposed convolutions ----
def _transpose_nd(x, weight, bias, stride, padding, output_padding, groups, dilation, nd, name):
    """x [N, Cin, H, W], weight [Cin, Cout/g, kh, kw]; the per-dim options are pairs."""
    N, C, H, W = x.shape
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    Ci, Og, kh, kw = weight.shape
    if C != Ci:
        raise RuntimeError(f"{name}: Given transposed=1, weight of size {list(weight.shape)}, expected input "
                           f"{list(x.shape)} to have {Ci} channels, but got {C} channels instead")
    if Ci % groups:
        raise RuntimeError(f"{name}: weight's first dimension {Ci} (in_channels) must be divisible by groups={groups}")
    for i in range(2):
        if stride[i] <= 0 or dilation[i] <= 0:
            raise RuntimeError(f"{name}: stride and dilation must be positive, got stride={stride}, dilation={dilation}")
        if padding[i] < 0 or output_padding[i] < 0:
            raise RuntimeError(f"{name}: negative padding is not supported")
        if output_padding[i] >= stride[i] and output_padding[i] >= dilation[i]:
            raise RuntimeError(f"{name}: output padding must be smaller than either stride or dilation, but got "
                               f"output_padding={output_padding[-nd:]}, stride={stride[-nd:]}, "
                               f"dilation={dilation[-nd:]}")
    O = Og * groups
    size = [(n - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k - 1) + output_padding[i] + 1
            for i, (n, k) in enumerate(((H, kh), (W, kw)))]
    if size[0] <= 0 or size[1] <= 0:
        raise RuntimeError(f"{name}: Given input size per channel {[H, W][-nd:]}, calculated output size "
                           f"{size[-nd:]} is too small")
    xs = x.reshape(N, groups, Ci // groups, H * W)
    wt = weight.reshape(groups, Ci // groups, Og * kh * kw).transpose(1, 2)  # [G, Og*kh*kw, Ci/G]
    cols = wt.matmul(xs).reshape(N, O * kh * kw, H * W)  # group-major channels, as the output's
    if output_padding[0] < stride[0] and output_padding[1] < stride[1]:  # fold's grid then has exactly H x W blocks
        out = _fc.fold(cols, size, [kh, kw], dilation, padding, stride)
    else:  # (a larger dilation allows output_padding >= stride): fold the unpadded grid, then crop / zero-extend
        grid = [(n - 1) * stride[i] + dilation[i] * (k - 1) + 1 for i, (n, k) in enumerate(((H, kh), (W, kw)))]
        out = _fc.fold(cols, grid, [kh, kw], dilation, [0, 0], stride)
        for i in range(2):
            keep = min(grid[i] - padding[i], size[i])
            out = out.narrow(2 + i, padding[i], keep)
            if keep < size[i]:
                out = _fc.pad(out, [0, size[i] - keep] if i == 1 else [0, 0, 0, size[i] - keep])
    if bias is not None:
        out = out + bias.reshape(1, O, 1, 1)
    return _fc._conv_layout(out, x, weight)


def _output_padding(input_spatial, output_size, stride, padding, kernel, dilation, nd):
    """output_padding from a requested output_size (the module's forward(..., output_size=))."""
    if output_size is None:
        return None
    output_size = list(output_size)[-nd:]
    if len(output_size) != nd:
        raise ValueError(f"ConvTranspose{nd}D: for {nd}D input, output_size must have {nd} or {nd + 2} elements "
                         f"(got {len(output_size)})")
    res = []
    for i in range(nd):
        lo = (input_spatial[i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[i] - 1) + 1
        if not lo <= output_size[i] < lo + stride[i]:
            raise ValueError(f"requested an output size of {output_size}, but valid sizes range from {lo} to "
                             f"{lo + stride[i] - 1} (for an input of {input_spatial})")
        res.append(output_size[i] - lo)
    return res


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    x, unbatched = _fc._batched(input, "conv_transpose2d")
    if weight.dim() != 4:
        raise RuntimeError(f"conv_transpose2d expects a 4-D weight [in, out / groups, kh, kw], got "
                           f"{list(weight.shape)}")
    P = _fc._pair
    out = _transpose_nd(x, weight, bias, P(stride, "stride"), P(padding, "padding"),
                        P(output_padding, "output_padding"), groups, P(dilation, "dilation"), 2, "conv_transpose2d")
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    x, unbatched = _batched1d(input, "conv_transpose1d")
    if weight.dim() != 3:
        raise RuntimeError(f"conv_transpose1d expects a 3-D weight [in, out / groups, k], got {list(weight.shape)}")
    out = _transpose_nd(x.unsqueeze(2), weight.unsqueeze(2), bias, [1, _single(stride, "stride")],
                        [0, _single(padding, "padding")], [0, _single(output_padding, "output_padding")], groups,
                        [1, _single(dilation, "dilation")], 1, "conv_transpose1d").squeeze(2).contiguous()
    return out.squeeze(0) if unbatched else out


# ---- 1-D poolings ----
def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    x, unbatched = _batched1d(input, "max_pool1d")
    k = _single(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _single(stride, "stride")
    res = _fc.max_pool2d(x.unsqueeze(2), [1, k], [1, s], [0, _single(padding, "padding")],
                         [1, _single(dilation, "dilation")], ceil_mode, return_indices)
    # the plane has height 1, so max_pool2d's flat indices are already positions along the length
    # without indices torch's own 1-D kernel gives a contiguous result; with them, max_pool2d's layout
    res = tuple(r.squeeze(2) for r in res) if return_indices else (res.squeeze(2).contiguous(),)
    res = tuple(r.squeeze(0) for r in res) if unbatched else res
    return res if return_indices else res[0]


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    x, unbatched = _batched1d(input, "avg_pool1d")
    k = _single(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _single(stride, "stride")
    out = _fc.avg_pool2d(x.unsqueeze(2), [1, k], [1, s], [0, _single(padding, "padding")], ceil_mode,
                         count_include_pad).squeeze(2)
    return out.squeeze(0) if unbatched else out


def _adaptive_windows(n, o):
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


def adaptive_avg_pool1d(input, output_size):
    x, unbatched = _batched1d(input, "adaptive_avg_pool1d")
    o = _single(output_size, "output_size")
    L = x.shape[2]
    if o <= 0 and L > 0:
        raise RuntimeError(f"adaptive_avg_pool1d: output_size must be positive, got {o}")
    A = [[0.0] * o for _ in range(L)]
    for i, (a, b) in enumerate(_adaptive_windows(L, o)):
        for j in range(a, b):
            A[j][i] = 1.0 / (b - a)
    out = x.matmul(_F().tensor(A, dtype=x.dtype, device=x.device))
    return out.squeeze(0) if unbatched else out


@_keeps_channels_last
def adaptive_max_pool2d(input, output_size, return_indices=False):
    x, unbatched = _fc._batched(input, "adaptive_max_pool2d")
    N, C, H, W = x.shape
    oh, ow = _fc._pair(output_size, "output_size")
    oh, ow = H if oh is None else oh, W if ow is None else ow
    if oh <= 0 or ow <= 0 or H == 0 or W == 0:
        raise RuntimeError(f"adaptive_max_pool2d: expected a non-empty input and a positive output_size, got input "
                           f"{list(input.shape)} and output_size {[oh, ow]}")
    F = _F()
    vals, idxs = [], []
    for y0, y1 in _adaptive_windows(H, oh):
        for x0, x1 in _adaptive_windows(W, ow):
            win = x.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).reshape(N, C, (y1 - y0) * (x1 - x0))
            v, j = win.max(2)
            vals.append(v)
            if return_indices:
                idxs.append((j // (x1 - x0) + y0) * W + j % (x1 - x0) + x0)
    out = F.stack(vals, 2).reshape(N, C, oh, ow)
    if return_indices:
        idx = F.stack(idxs, 2).reshape(N, C, oh, ow)
        return (out.squeeze(0), idx.squeeze(0)) if unbatched else (out, idx)
    return out.squeeze(0) if unbatched else out


def adaptive_max_pool1d(input, output_size, return_indices=False):
    x, unbatched = _batched1d(input, "adaptive_max_pool1d")
    # a unit-height plane: adaptive_max_pool2d's flat indices are positions along the length
    res = adaptive_max_pool2d(x.unsqueeze(2), [1, _single(output_size, "output_size")], return_indices)
    # without indices torch's own 1-D kernel gives a contiguous result; with them, max_pool2d's layout
    res = tuple(r.squeeze(2) for r in res) if return_indices else (res.squeeze(2).contiguous(),)
    res = tuple(r.squeeze(0) for r in res) if unbatched else res
    return res if return_indices else res[0]


__all__ = ["conv1d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "avg_pool1d", "adaptive_avg_pool1d",
           "adaptive_max_pool1d", "adaptive_max_pool2d"]
