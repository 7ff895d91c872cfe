"""pad, one_hot, unfold/fold, conv2d and the 2-D poolings, with torch's signatures, checks and results.

The spatial ops all stand on one pair of dispatcher ops, vt::im2col / vt::col2im (F.unfold / F.fold; CPU and
CUDA kernels, each the other's backward):
  - conv2d: columns = im2col(x) [N, C*kh*kw, L], then the weight viewed as [O, C*kh*kw] times them (per group,
    batched over groups), viewed as [N, O, oh, ow], plus the bias. The CPU stores the columns as they are
    indexed, so that product writes NCHW directly; CUDA stores them [N, L, C*kh*kw] and multiplies those rows
    by the weight in one GEMM;
  - max_pool2d: im2col of the input padded with -inf, then max over the window (its index gives the gradient
    to one element per window, as torch's), and return_indices as flat positions in the input plane;
  - avg_pool2d: im2col of the zero-padded input summed over the window, divided by the window count that
    torch's options define (count_include_pad, ceil_mode's clipped windows, divisor_override), itself an
    im2col of a mask.
pad lives in functional_pad.py (Note [Pads as gathers]). one_hot scatters ones into zeros (not differentiable:
an integer result).
"""

from ..._C import core as _core
from .. import _functions
from ._layouts import _in_format, _keeps_channels_last
from .functional_pad import pad

_im2col = _core.op("vt::im2col")
_col2im = _core.op("vt::col2im")


def _F():
    return _functions  # imported above: vibetensor.torch imports _functions before nn


def _ntuple(v, n, name):
    """An int or a sequence of 1 or n ints as a list of n ints (kernel sizes, strides, paddings, dilations)."""
    if isinstance(v, int):
        return [v] * n
    v = list(v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        what = "a pair of ints" if n == 2 else f"a tuple of {('', 'one', 'two', 'three')[n]} ints"
        raise RuntimeError(f"{name} must be an int or {what}, got {v}")
    return v


def _pair(v, name="value"):
    return _ntuple(v, 2, name)


def _batched_n(input, name, spatial):
    """input with a batch dim (added to an unbatched one) and whether it was added, for `spatial` spatial dims."""
    if input.dim() == spatial + 1:
        return input.unsqueeze(0), True
    if input.dim() != spatial + 2:
        raise RuntimeError(f"{name}: Expected {spatial + 1}D (unbatched) or {spatial + 2}D (batched) input, but got "
                           f"input of size: {list(input.shape)}")
    return input, False


def _batched(input, name):
    return _batched_n(input, name, 2)


# ---- one_hot, unfold / fold ----
def one_hot(tensor, num_classes=-1):
    F = _F()
    if tensor.dtype != _core.dtype.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    highest = None
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        highest = int(tensor.max())
        num_classes = highest + 1
    if tensor.numel() and tensor.is_cpu:  # checked where it costs no device sync, as torch's CPU kernel
        if int(tensor.min()) < 0:
            raise RuntimeError("Class values must be non-negative.")
        if (int(tensor.max()) if highest is None else highest) >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    # zeros, then a 1 scattered at each index: two kernels (a comparison with arange and a cast took three)
    out = F.zeros(*tensor.shape, num_classes, dtype=_core.dtype.int64, device=tensor.device)
    return out.scatter_(-1, tensor.unsqueeze(-1), 1)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    x, unbatched = _batched(input, "unfold") if input.dim() in (3, 4) else (input, False)
    out = _im2col(x, _pair(kernel_size), _pair(dilation), _pair(padding), _pair(stride))
    out = out.contiguous()  # im2col stores [N, L, C*kh*kw]; torch's unfold is contiguous (so .view(N, -1) works)
    return out.squeeze(0) if unbatched else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    unbatched = input.dim() == 2
    x = input.unsqueeze(0) if unbatched else input
    out = _col2im(x, _pair(output_size), _pair(kernel_size), _pair(dilation), _pair(padding), _pair(stride))
    return out.squeeze(0) if unbatched else out


# ---- conv2d ----
def _conv_layout(out, x, weight):
    """A convolution's result in torch's layout: channels_last (3-D for 5-D) when the input or the weight suggests
    it - the rule of torch's CPU and cuDNN backends - else contiguous, never the column product's own strides
    (a contiguous model's conv(x).view(N, -1) must work; a channels_last model stays channels_last)."""
    from .. import _memory_format as mf

    fmt = mf.suggest_memory_format(x)
    if fmt is mf.contiguous_format and x.numel():  # (an empty batch gives torch a contiguous result)
        fmt = mf.suggest_memory_format(weight)
    return _in_format(out, fmt)


def _check_groups(x, weight, groups):
    """torch's checks of a forward convolution's groups against weight [out, in/groups, ...] and input [N, C, ...],
    with its messages (conv1d/2d/3d)."""
    O, Cg, C = weight.shape[0], weight.shape[1], x.shape[1]
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if O % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size {list(weight.shape)} instead")
    if C != Cg * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input{list(x.shape)} "
                           f"to have {Cg * groups} channels, but got {C} channels instead")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, unbatched = _batched(input, "conv2d")
    given = x  # its layout decides the result's (not that of the padded copy padding='same' may make)
    if weight.dim() != 4:
        raise RuntimeError(f"weight should have at least three dimensions; conv2d expects a 4-D weight, got "
                           f"{list(weight.shape)}")
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    _check_groups(x, weight, groups)
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0, 0]
        elif padding == "same":
            if stride != [1, 1]:
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            total = [dilation[0] * (kh - 1), dilation[1] * (kw - 1)]
            if total[0] % 2 or total[1] % 2:  # uneven: the extra row/column goes at the end, as torch's
                x = pad(x, [total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2])
                padding = [0, 0]
            else:
                padding = [total[0] // 2, total[1] // 2]
        else:
            raise ValueError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
    padding = _pair(padding, "padding")
    eff = [dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1]
    Hp, Wp = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if Hp < eff[0] or Wp < eff[1]:
        raise RuntimeError(f"Calculated padded input size per channel: ({Hp} x {Wp}). Kernel size: ({eff[0]} x "
                           f"{eff[1]}). Kernel size can't be greater than actual input size")
    cols = _im2col(x, [kh, kw], dilation, padding, stride)  # [N, C*kh*kw, L]
    oh = (Hp - eff[0]) // stride[0] + 1
    ow = (Wp - eff[1]) // stride[1] + 1
    if groups == 1 and cols.is_contiguous():  # the CPU's planar columns: [O, C*K] @ [N, C*K, L] is [N, O, L] NCHW
        out = weight.reshape(O, Cg * kh * kw).matmul(cols)
    elif groups == 1:  # CUDA's: one GEMM over the [N*L, C*kh*kw] rows (vt::im2col's storage, Note [Column layout])
        out = cols.transpose(1, 2).matmul(weight.reshape(O, Cg * kh * kw).t()).transpose(1, 2)  # [N, O, L]
    else:
        cols = cols.reshape(N, groups, Cg * kh * kw, oh * ow)
        out = weight.reshape(groups, O // groups, Cg * kh * kw).matmul(cols)  # [N, G, O/G, L]
    out = out.reshape(N, O, oh, ow)
    if bias is not None:
        out = out + bias.reshape(1, O, 1, 1)
    out = _conv_layout(out, given, weight)
    return out.squeeze(0) if unbatched else out


# ---- pooling ----
def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode):
    k, d, p = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation"), _pair(padding, "padding")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride, "stride")
    out, extra = [], []
    for i, n in enumerate(x.shape[2:]):
        eff = d[i] * (k[i] - 1) + 1
        if p[i] > k[i] // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p[i]}, "
                               f"kernel_size={k[i]} and dilation={d[i]}")
        span = n + 2 * p[i] - eff
        o = (-(-span // s[i]) if ceil_mode else span // s[i]) + 1
        if ceil_mode and (o - 1) * s[i] >= n + p[i]:
            o -= 1
        out.append(o)
        extra.append(max(0, (o - 1) * s[i] + eff - (n + 2 * p[i])))  # room ceil_mode's last window needs
    if out[0] < 1 or out[1] < 1:
        raise RuntimeError(f"Given input size: ({x.shape[1]}x{x.shape[2]}x{x.shape[3]}). Calculated output size: "
                           f"({x.shape[1]}x{out[0]}x{out[1]}). Output size is too small")
    return k, s, p, d, out, extra


def _windows(x, k, s, d, fill, p, extra):
    """[N*C, kh*kw, L]: each window of each plane, the input padded with `fill` (p before, p + extra after)."""
    N, C, H, W = x.shape
    planes = x.reshape(N * C, 1, H, W)
    padded = pad(planes, [p[1], p[1] + extra[1], p[0], p[0] + extra[0]], value=fill)
    return _im2col(padded, k, d, [0, 0], s)


@_keeps_channels_last
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    x, unbatched = _batched(input, "max_pool2d")
    k, s, p, d, (oh, ow), extra = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    N, C, H, W = x.shape
    values, which = _windows(x, k, s, d, float("-inf"), p, extra).max(1)  # [N*C, L]
    from .._math_functions import _input_in_graph
    out = _input_in_graph(values.reshape(N, C, oh, ow), x)
    if return_indices:
        F = _F()
        ki, kj = which // k[1], which % k[1]
        l = F.arange(oh * ow, device=x.device)
        y = (l // ow) * s[0] - p[0] + ki * d[0]
        xx = (l % ow) * s[1] - p[1] + kj * d[1]
        idx = (y * W + xx).reshape(N, C, oh, ow)
        return (out.squeeze(0), idx.squeeze(0)) if unbatched else (out, idx)
    return out.squeeze(0) if unbatched else out


@_keeps_channels_last
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    x, unbatched = _batched(input, "avg_pool2d")
    k, s, p, d, (oh, ow), extra = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    N, C, H, W = x.shape
    sums = _windows(x, k, s, d, 0.0, p, extra).sum(1)  # [N*C, L]
    if divisor_override is not None:
        if divisor_override == 0:
            raise RuntimeError("divisor must be not zero")
        out = sums / divisor_override
    else:
        F = _F()
        # Which padded positions count: the image, plus the zero padding when count_include_pad (never the
        # extra room ceil_mode adds past the padding).
        mask = F.ones(1, 1, H, W, dtype=x.dtype, device=x.device)
        if count_include_pad:
            mask = pad(mask, [p[1], p[1], p[0], p[0]], value=1.0)
            count = _im2col(pad(mask, [0, extra[1], 0, extra[0]]), k, d, [0, 0], s).sum(1)
        else:
            count = _windows(mask, k, s, d, 0.0, p, extra).sum(1)
        out = sums / count
    out = out.reshape(N, C, oh, ow)
    return out.squeeze(0) if unbatched else out


@_keeps_channels_last
def adaptive_avg_pool2d(input, output_size):
    """An avg_pool2d when the input size is a multiple of the output size (the common global-pool use), else
    torch's uneven windows averaged one dim at a time (a product with an averaging matrix)."""
    x, unbatched = _batched(input, "adaptive_avg_pool2d")
    oh, ow = _pair(output_size)
    oh, ow = x.shape[2] if oh is None else oh, x.shape[3] if ow is None else ow
    if oh and ow and not (x.shape[2] % oh or x.shape[3] % ow):
        out = avg_pool2d(x, [x.shape[2] // oh, x.shape[3] // ow])
    else:
        from .functional_conv3d import _avg_matrix

        out = x
        for dim, o in ((3, ow), (2, oh)):
            out = out.movedim(dim, -1).matmul(_avg_matrix(x.shape[dim], o, x.dtype, x.device)).movedim(-1, dim)
        out = out.contiguous()  # (not the movedim's strides: torch's result is contiguous)
    return out.squeeze(0) if unbatched else out


__all__ = ["pad", "one_hot", "unfold", "fold", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]
