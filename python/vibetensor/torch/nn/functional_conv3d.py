"""conv3d, max_pool3d, avg_pool3d, adaptive_avg_pool3d and lp_pool1d/2d/3d with torch's signatures and results,
composed from the 2-D ops:
  - conv3d: the kd depth taps are stacked as channels (each tap a strided depth slice of the input, batch and
    output depth merged), so one conv2d with the weight laid out [O, kd*Cg, kh, kw] per group does the work;
  - max_pool3d / avg_pool3d: the 2-D pool over (H, W) of every depth plane, then a max / sum over the depth
    taps; an average window is a box, so its count is the (H, W) count times the depth count;
  - adaptive_avg_pool3d: one averaging matrix per dim (exact for any sizes);
  - lp_pool: (sum of x**p over the window) ** (1/p), as torch's, from the average pool.
Everything is differentiable through the ops it is built from."""
from . import functional_conv as _fc
from .functional_conv import _batched_n, _ntuple
from . import functional_conv_more as _fm


def _T():
    from .. import _functions
    return _functions


def _triple(v, name):
    return _ntuple(v, 3, name)


def _batched3d(input, name):
    return _batched_n(input, name, 3)


def _depth_taps(x, k, s, d, od):
    """[N, C, k, od, ...]: for each tap t the depth slice t*d, t*d + s, ... (od of them)."""
    T = _T()
    return T.stack([x[:, :, t * d: t * d + (od - 1) * s + 1: s] for t in range(k)], 2)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    x, unbatched = _batched3d(input, "conv3d")
    given = x  # its layout decides the result's (not that of a padded copy)
    if weight.dim() != 5:
        raise RuntimeError(f"conv3d expects a 5-D weight [out, in/groups, kd, kh, kw], got {list(weight.shape)}")
    N, C = x.shape[:2]
    O, Cg, kd, kh, kw = weight.shape
    stride, dilation = _triple(stride, "stride"), _triple(dilation, "dilation")
    _fc._check_groups(x, weight, groups)
    k = [kd, kh, kw]
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0, 0, 0]
        elif padding == "same":
            if stride != [1, 1, 1]:
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            total = [dilation[i] * (k[i] - 1) for i in range(3)]
            # uneven totals put the extra element at the end, as torch's
            x = _fc.pad(x, [total[2] // 2, total[2] - total[2] // 2, total[1] // 2, total[1] - total[1] // 2,
                            total[0] // 2, total[0] - total[0] // 2])
            padding = [0, 0, 0]
        else:
            raise ValueError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
    padding = _triple(padding, "padding")
    if padding[0]:
        x = _fc.pad(x, [0, 0, 0, 0, padding[0], padding[0]])
    Dp, H, W = x.shape[2:]
    eff = [dilation[i] * (k[i] - 1) + 1 for i in range(3)]
    if Dp < eff[0] or H + 2 * padding[1] < eff[1] or W + 2 * padding[2] < eff[2]:
        raise RuntimeError(f"Calculated padded input size per channel: ({Dp} x {H + 2 * padding[1]} x "
                           f"{W + 2 * padding[2]}). Kernel size: ({eff[0]} x {eff[1]} x {eff[2]}). Kernel size can't "
                           "be greater than actual input size")
    od = (Dp - eff[0]) // stride[0] + 1
    taps = _depth_taps(x, kd, stride[0], dilation[0], od)  # [N, C, kd, od, H, W]
    G = groups
    # channels ordered [group, tap, Cg] so that conv2d's group g sees the taps of its own channels
    taps = taps.reshape(N, G, Cg, kd, od, H, W).permute(0, 4, 1, 3, 2, 5, 6).reshape(N * od, G * kd * Cg, H, W)
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(O, kd * Cg, kh, kw)
    out = _fc.conv2d(taps, w2, None, stride[1:], padding[1:], dilation[1:], groups)  # [N*od, O, oh, ow]
    out = out.reshape(N, od, O, out.shape[2], out.shape[3]).transpose(1, 2)
    if bias is not None:
        out = out + bias.reshape(1, O, 1, 1, 1)
    out = _fc._conv_layout(out, given, weight)  # not the [N, od, O, ...] transpose
    return out.squeeze(0) if unbatched else out


def _depth_geometry(n, k, s, p, d, ceil_mode):
    """Output length along depth and the extra room ceil_mode's last window needs past the padding."""
    if p > k // 2:
        raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                           f"kernel_size={k} and dilation={d}")
    eff = d * (k - 1) + 1
    span = n + 2 * p - eff
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    if o < 1:
        raise RuntimeError(f"Given input size: ({n}). Calculated output size: ({o}). Output size is too small")
    return o, max(0, (o - 1) * s + eff - (n + 2 * p))


def _pool_args(kernel_size, stride, padding, dilation):
    k = _triple(kernel_size, "kernel_size")
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _triple(stride, "stride")
    return k, s, _triple(padding, "padding"), _triple(dilation, "dilation")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    x, unbatched = _batched3d(input, "max_pool3d")
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation)
    N, C, D, H, W = x.shape
    od, extra = _depth_geometry(D, k[0], s[0], p[0], d[0], ceil_mode)
    xp = _fc.pad(x, [0, 0, 0, 0, p[0], p[0] + extra], value=float("-inf"))
    Dp = xp.shape[2]
    planes = _fc.max_pool2d(xp.reshape(N, C * Dp, H, W), k[1:], s[1:], p[1:], d[1:], ceil_mode, return_indices)
    if return_indices:
        planes, idx2 = planes
    oh, ow = planes.shape[2:]
    values, which = _depth_taps(planes.reshape(N, C, Dp, oh, ow), k[0], s[0], d[0], od).max(2)
    if return_indices:
        T = _T()
        taps_idx = _depth_taps(idx2.reshape(N, C, Dp, oh, ow), k[0], s[0], d[0], od)
        hw = taps_idx.gather(2, which.unsqueeze(2)).squeeze(2)
        depth = T.arange(od, device=x.device).reshape(1, 1, od, 1, 1) * s[0] - p[0] + which * d[0]
        idx = depth * (H * W) + hw
        return (values.squeeze(0), idx.squeeze(0)) if unbatched else (values, idx)
    return values.squeeze(0) if unbatched else values


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    x, unbatched = _batched3d(input, "avg_pool3d")
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1)
    N, C, D, H, W = x.shape
    od, extra = _depth_geometry(D, k[0], s[0], p[0], 1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    xp = _fc.pad(x, [0, 0, 0, 0, p[0], p[0] + extra])
    Dp = xp.shape[2]
    planes = _fc.avg_pool2d(xp.reshape(N, C * Dp, H, W), k[1:], s[1:], p[1:], ceil_mode, count_include_pad,
                            1 if divisor_override is not None else None)
    oh, ow = planes.shape[2:]
    sums = _depth_taps(planes.reshape(N, C, Dp, oh, ow), k[0], s[0], 1, od).sum(2)
    if divisor_override is not None:
        out = sums / divisor_override
    else:
        counts = []
        for o in range(od):
            a = o * s[0] - p[0]
            b = min(a + k[0], D + p[0])
            counts.append(b - a if count_include_pad else min(b, D) - max(a, 0))
        out = sums / _T().tensor(counts, dtype=x.dtype, device=x.device).reshape(1, 1, od, 1, 1)
    return out.squeeze(0) if unbatched else out


def _avg_matrix(n, o, dtype, device):
    A = [[0.0] * o for _ in range(n)]
    for i, (a, b) in enumerate(_fm._adaptive_windows(n, o)):
        for j in range(a, b):
            A[j][i] = 1.0 / (b - a)
    return _T().tensor(A, dtype=dtype, device=device)


def adaptive_avg_pool3d(input, output_size):
    x, unbatched = _batched3d(input, "adaptive_avg_pool3d")
    osz = [None] * 3 if output_size is None else (
        [output_size] * 3 if isinstance(output_size, int) else list(output_size))
    if len(osz) != 3:
        raise RuntimeError(f"adaptive_avg_pool3d: output_size must be 3, got {len(osz)}")
    osz = [x.shape[2 + i] if o is None else o for i, o in enumerate(osz)]
    if any(o < 0 for o in osz):
        raise RuntimeError(f"adaptive_avg_pool3d: elements of output_size must be greater than or equal to 0 but "
                           f"received {osz}")
    for dim in (4, 3, 2):  # average along one dim at a time: move it last, multiply, move it back
        m = _avg_matrix(x.shape[dim], osz[dim - 2], x.dtype, x.device)
        x = x.movedim(dim, -1).matmul(m).movedim(-1, dim)
    return x.squeeze(0) if unbatched else x


def _lp(avg, norm_type, window):
    # torch's form: sign(s) * relu(|s|)
    return (avg.sign() * avg.abs().relu()).mul(window).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    if stride is None:
        stride = kernel_size
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    avg = _fm.avg_pool1d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return _lp(avg, norm_type, k)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    kh, kw = _fc._pair(kernel_size, "kernel_size")
    if stride is None:
        stride = kernel_size
    avg = _fc.avg_pool2d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return _lp(avg, norm_type, kh * kw)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    kd, kh, kw = _triple(kernel_size, "kernel_size")
    if stride is None:
        stride = kernel_size
    avg = avg_pool3d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return _lp(avg, norm_type, kd * kh * kw)


__all__ = ["conv3d", "max_pool3d", "avg_pool3d", "adaptive_avg_pool3d", "lp_pool1d", "lp_pool2d", "lp_pool3d"]
