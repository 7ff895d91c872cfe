"""interpolate (nearest, nearest-exact, linear, bilinear, bicubic, trilinear, lanczos, area) and pixel_shuffle /
pixel_unshuffle.

interpolate is separable: each spatial dim has a plan of taps, the input rows each output row reads and their
weights, and one `_resample` kernel applies the plans of every dim at once (Note [Resampling plans] in
core/src/ops/resample.h; its gradient is the adjoint resampling, on CUDA by the transposed taps built here with
the plans, Note [Adjoint plans]). The source indices follow torch's rules, computed host-side in the
accumulation precision (float32 for float32 and 16-bit input, as torch's kernels):
nearest takes floor(dst * scale), nearest-exact floor((dst + 0.5) * scale); linear maps dst to
(dst + 0.5) * scale - 0.5 (clamped at 0), or dst * (in - 1) / (out - 1) with align_corners, and blends the two
rows around it by 1 - lambda and lambda. scale is 1 / scale_factor when a scale_factor is given and not
recomputed, else in / out. bicubic maps dst as linear does but without the clamp at 0, and blends the four rows
floor(src) - 1 .. floor(src) + 2 (clamped to the border) by the cubic convolution kernel with A = -0.75, as
torch's. area is adaptive_avg_pool to the output size. With antialias (bilinear / bicubic / lanczos, 4-D
input), each output row blends every input row under the filter (the triangle, the cubic kernel with A = -0.5
as PIL's, or Lanczos-3: sinc(x) sinc(x / 3) on |x| < 3) stretched by the scale when downsampling, with weights
normalised to sum 1, as torch's separable kernels; rows with a narrower support than the widest pad their taps
with -1 (no tap). lanczos exists only with antialias.
"""
import functools
import math

import numpy as np

from ..._C import core as _core
from ._adjoint_plans import adjoint_pass, plan_tensor
from ._checked_calls import CheckedCalls
from ._layouts import _keeps_channels_last

_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "lanczos", "area")
_MODE_LIST = "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact"
_AA_SIZE = {"bilinear": 2, "bicubic": 4, "lanczos": 6}  # taps of each antialias filter at scale 1
_resample = _core.op("vt::_resample")


def _output_sizes(input, size, scale_factor, recompute_scale_factor):
    nd = input.dim() - 2
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor is not None and recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        sizes = list(size) if isinstance(size, (list, tuple)) else [size] * nd
        if len(sizes) != nd:
            raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input "
                             f"with spatial dimensions of {spatial} and output size of {sizes}. Please provide "
                             "input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, ...,oK) "
                             "format.")
        return [int(s) for s in sizes], [None] * nd
    if scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    scales = list(scale_factor) if isinstance(scale_factor, (list, tuple)) else [scale_factor] * nd
    if len(scales) != nd:
        raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                         f"with spatial dimensions of {spatial} and scale_factor of shape {scales}. Please provide "
                         "input tensor in (N, C, d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) "
                         "format.")
    sizes = [math.floor(float(n) * float(s)) for n, s in zip(spatial, scales)]
    return sizes, [None] * nd if recompute_scale_factor else [float(s) for s in scales]


def _scale(n_in, n_out, given, align_corners, ftype):
    if align_corners:
        return ftype((n_in - 1) / (n_out - 1)) if n_out > 1 else ftype(0)
    if given is not None and given > 0:
        return ftype(1.0 / given)
    return ftype(n_in) / ftype(n_out)


def _nearest_index(n_in, n_out, given, exact, ftype):
    dst = np.arange(n_out, dtype=ftype)
    scale = _scale(n_in, n_out, given, False, ftype)
    src = np.floor((dst + ftype(0.5)) * scale) if exact else np.floor(dst * scale)
    return np.minimum(src.astype(np.int64), n_in - 1)


def _linear_weights(n_in, n_out, given, align_corners, ftype):
    dst = np.arange(n_out, dtype=ftype)
    scale = _scale(n_in, n_out, given, align_corners, ftype)
    src = dst * scale if align_corners else np.maximum((dst + ftype(0.5)) * scale - ftype(0.5), ftype(0))
    i0 = np.floor(src).astype(np.int64)
    lam = np.clip(src - i0.astype(ftype), 0, 1).astype(ftype)
    i0 = np.minimum(i0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, lam


def _cubic_weights(n_in, n_out, given, align_corners, ftype):
    """The four source rows of each output row (border-clamped) and their cubic-convolution weights."""
    A = ftype(-0.75)
    dst = np.arange(n_out, dtype=ftype)
    scale = _scale(n_in, n_out, given, align_corners, ftype)
    src = dst * scale if align_corners else (dst + ftype(0.5)) * scale - ftype(0.5)
    i0 = np.floor(src)
    t = (src - i0).astype(ftype)

    def near(x):  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    weights = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    rows = [np.clip(i0.astype(np.int64) + k - 1, 0, n_in - 1) for k in range(4)]
    return rows, weights


def _aa_weights(n_in, n_out, given, align_corners, mode, ftype):
    """torch's antialiased resampling taps along one dim, (rows, weights), each [n_out, widest support]: output i
    is centred at scale * (i + 0.5), its filter support (1 or 2, times the scale when downsampling) clipped to
    the input and its weights normalised to sum 1."""
    scale = _scale(n_in, n_out, given, align_corners, ftype)
    interp_size = _AA_SIZE[mode]
    support = ftype(interp_size * 0.5) * scale if scale >= 1 else ftype(interp_size * 0.5)
    invscale = ftype(1) / scale if scale >= 1 else ftype(1)
    max_size = int(math.ceil(support)) * 2 + 1
    A = ftype(-0.5)

    def sinc(x):
        px = ftype(math.pi) * np.where(x == 0, ftype(1), x)
        return np.where(x == 0, ftype(1), np.sin(px) / px)

    def filt(x):
        x = np.abs(x)
        if mode == "lanczos":
            return np.where(x < 3, sinc(x) * sinc(x / ftype(3)), ftype(0))
        if mode == "bicubic":
            near = ((A + 2) * x - (A + 3)) * x * x + 1
            far = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
            return np.where(x < 1, near, np.where(x < 2, far, ftype(0)))
        return np.where(x < 1, 1 - x, ftype(0))

    rows = np.full((n_out, max_size), -1, dtype=np.int64)  # -1: no tap (Note [Resampling plans])
    w = np.zeros((n_out, max_size), dtype=ftype)
    for i in range(n_out):
        center = scale * ftype(i + 0.5)
        lo = max(int(center - support + ftype(0.5)), 0)
        size = min(max(min(int(center + support + ftype(0.5)), n_in) - lo, 0), max_size)
        taps = filt((np.arange(lo, lo + size).astype(ftype) - center + ftype(0.5)) * invscale).astype(ftype)
        total = taps.sum(dtype=ftype)
        rows[i, :size] = np.arange(lo, lo + size)
        w[i, :size] = taps / total if total != 0 else taps
    return rows, w


@_keeps_channels_last
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    key = _call_key(input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias)
    passes = _CALLS.get(key, _checked_passes, input, size, scale_factor, mode, align_corners,
                        recompute_scale_factor, antialias)
    if passes[0] == "area":
        from . import functional as NF

        pool = (NF.adaptive_avg_pool1d, NF.adaptive_avg_pool2d, NF.adaptive_avg_pool3d)[input.dim() - 3]
        return pool(input, passes[1])
    out = input
    for args in passes:
        out = _resample(out, *args)
    return out


# Note [Checked interpolate calls]
# A model resizes the same shapes with the same arguments every step, and interpolate's argument checks and size
# arithmetic cost more host time than the kernel launch (9.7 us a call against torch's 3.1 on the devbox). A call
# whose arguments (the input's shape, dtype and device included) were checked before reuses what that call found:
# its passes of plans (Note [Resampling plans are cached]), or area's output size. Calls with other than Python
# numbers for size or scale_factor (tensors, NumPy scalars) are checked every time.
_CALLS = CheckedCalls()


def _plain(v):
    """v as a hashable key when it is None, a Python number or a list / tuple of them; None otherwise (tensor
    values can change between calls)."""
    if v is None or type(v) in (int, float):
        return (v,)
    if isinstance(v, (list, tuple)) and all(type(e) in (int, float) for e in v):
        return tuple(v)
    return None


def _call_key(input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias):
    s, f = _plain(size), _plain(scale_factor)
    if s is None or f is None or not isinstance(mode, str):
        return None
    return (tuple(input.shape), input.dtype, input.device, mode, align_corners, recompute_scale_factor, antialias,
            type(size) is int, s, type(scale_factor) in (int, float), f)


def _checked_passes(input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias):
    """torch's argument checks, then the call's passes of plans (("area", sizes) for area, an adaptive pool)."""
    if mode not in _MODES:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got "
                                  f"{input.dim()}D) for the modes: {_MODE_LIST} (got {mode})")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: linear | bilinear | "
                         "bicubic | trilinear")
    if antialias and (mode not in _AA_SIZE or input.dim() != 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a "
                         "4-D tensor as input")
    if mode == "lanczos" and input.dim() == 4:
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")
    if input.dim() not in (3, 4, 5):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) "
                                  f"for the modes: {_MODE_LIST} (got {mode})")
    if mode in ("bicubic", "lanczos") and input.dim() != 4:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) "
                                  f"for the modes: {_MODE_LIST} (got {mode})")
    if mode in _LINEAR and _LINEAR[mode] != input.dim() - 2:
        raise NotImplementedError(f"Got {input.dim()}D input, but {mode} mode needs {_LINEAR[mode] + 2}D input")
    sizes, given = _output_sizes(input, size, scale_factor, recompute_scale_factor)
    if any(s <= 0 for s in sizes) or any(s <= 0 for s in input.shape[2:]):
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input "
                           f"({', '.join(map(str, input.shape[2:]))}) and output ({', '.join(map(str, sizes))})")
    if mode == "area":
        return ("area", sizes)
    weighted = mode not in ("nearest", "nearest-exact")
    if weighted and not input.dtype.is_floating_point:
        raise RuntimeError(f"\"upsample_{mode}\" not implemented for '{_dtype_name(input.dtype)}'")
    return _plans(mode, antialias, tuple(input.shape[2:]), tuple(sizes), tuple(given), bool(align_corners),
                  input.dtype, input.device)


def _dtype_name(dtype):
    return {"uint8": "Byte", "int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long",
            "bool": "Bool"}.get(str(dtype).rsplit(".", 1)[-1], str(dtype))


# Note [Resampling plans are cached]
# A spatial dim's taps (source rows and weights) depend only on the sizes, the given scale, the mode and the
# input's dtype and device. They are made once (NumPy on the host, then copied to the device) and kept, so a
# model that resamples the same shapes every step (a U-Net's upsampling, a diffusion model's) pays neither the
# host math nor the host-to-device copies again: on a GPU those copies were most of a small interpolate's time.
# The kept tensors are internal: the _resample kernel reads them; nothing writes them.
@functools.lru_cache(maxsize=256)
def _plans(mode, antialias, n_ins, n_outs, given, align_corners, dtype, device):
    """The passes of _resample that make the resize, each the call's arguments after the input: (indices,
    weights) with a plan per spatial dim, weights empty for the nearest modes (a gather), and for a floating CUDA
    input the adjoint plans (Note [Adjoint plans]). One pass resamples every dim at once, but an
    antialiased resize runs one pass per dim, the last dim first, with the other dim's plan the identity, as
    torch's separable kernels: a 4x downsample has 9 taps per dim, 18 reads per output in two passes where one
    pass would read 81."""
    ftype = np.float64 if str(dtype).endswith("float64") else np.float32
    wtype = _core.dtype.float64 if ftype is np.float64 else _core.dtype.float32
    plans = []  # (rows, weights) per spatial dim, NumPy
    for n_in, n_out, s in zip(n_ins, n_outs, given):
        if antialias:
            plans.append(_aa_weights(n_in, n_out, s, align_corners, mode, ftype))
        elif mode in _LINEAR:
            i0, i1, lam = _linear_weights(n_in, n_out, s, align_corners, ftype)
            plans.append((np.stack([i0, i1], 1), np.stack([ftype(1) - lam, lam], 1)))
        elif mode == "bicubic":
            r, ws = _cubic_weights(n_in, n_out, s, align_corners, ftype)
            plans.append((np.stack(r, 1), np.stack(ws, 1)))
        else:
            plans.append((_nearest_index(n_in, n_out, s, mode == "nearest-exact", ftype)[:, None], None))
    if not antialias:
        return [_pass(plans, n_ins, dtype, wtype, device)]
    (h_in, w_in), w_out = n_ins, n_outs[1]
    same = [(np.arange(n)[:, None], np.ones((n, 1), ftype)) for n in (h_in, w_out)]
    return [_pass([same[0], plans[1]], (h_in, w_in), dtype, wtype, device),
            _pass([plans[0], same[1]], (h_in, w_out), dtype, wtype, device)]


def _pass(plans, n_ins, dtype, wtype, device):
    """One _resample pass's arguments as device tensors: (indices, weights), with the adjoint plans' for a
    floating CUDA input (Note [Adjoint plans])."""
    indices = [plan_tensor(r, _core.dtype.int64, device) for r, _ in plans]
    weights = [plan_tensor(w, wtype, device) for _, w in plans if w is not None]
    if device.type != "cuda" or not dtype.is_floating_point:
        return indices, weights
    return (indices, weights) + adjoint_pass(plans, n_ins, wtype, device)


def pixel_shuffle(input, upscale_factor):
    """(*, C * r^2, H, W) -> (*, C, H * r, W * r)."""
    r = upscale_factor
    if input.dim() < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.dim()} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    *batch, C, H, W = input.shape
    if C % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
                           f"of upscale_factor, but input.size(-3)={C} is not divisible by {r * r}")
    b = len(batch)
    x = input.reshape(batch + [C // (r * r), r, r, H, W])
    x = x.permute(list(range(b)) + [b, b + 3, b + 1, b + 4, b + 2])
    return x.reshape(batch + [C // (r * r), H * r, W * r])


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r^2, H, W)."""
    r = downscale_factor
    if input.dim() < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.dim()} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    *batch, C, H, W = input.shape
    if H % r:
        raise RuntimeError(f"pixel_unshuffle expects height to be divisible by downscale_factor, but input.size(-2)"
                           f"={H} is not divisible by {r}")
    if W % r:
        raise RuntimeError(f"pixel_unshuffle expects width to be divisible by downscale_factor, but input.size(-1)"
                           f"={W} is not divisible by {r}")
    b = len(batch)
    x = input.reshape(batch + [C, H // r, r, W // r, r])
    x = x.permute(list(range(b)) + [b, b + 2, b + 4, b + 1, b + 3])
    return x.reshape(batch + [C * r * r, H // r, W // r])


__all__ = ["interpolate", "pixel_shuffle", "pixel_unshuffle"]
