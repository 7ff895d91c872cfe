"""interpolate (nearest, nearest-exact, linear, bilinear, bicubic, trilinear, lanczos, area) and pixel_shuffle /
pixel_unshuffle.

interpolate is separable: each spatial dim in turn is resampled by gathering input rows (index_select, so
autograd scatters the gradient back) and, for the linear modes, blending two neighbours by their weights. The
source indices follow torch's rules, computed host-side in the input's precision (float32 for float32 input,
as torch's kernels): nearest takes floor(dst * scale), nearest-exact floor((dst + 0.5) * scale); linear maps
dst to (dst + 0.5) * scale - 0.5 (clamped at 0), or dst * (in - 1) / (out - 1) with align_corners. scale is
1 / scale_factor when a scale_factor is given and not recomputed, else in / out. bicubic maps dst as linear
does but without the clamp at 0, and blends the four rows floor(src) - 1 .. floor(src) + 2 (clamped to the
border) by the cubic convolution kernel with A = -0.75, as torch's. area is adaptive_avg_pool to the output size.
With antialias (bilinear / bicubic / lanczos, 4-D input), each output row blends every input row under the
filter (the triangle, the cubic kernel with A = -0.5 as PIL's, or Lanczos-3: sinc(x) sinc(x / 3) on |x| < 3)
stretched by the scale when downsampling, with weights normalised to sum 1, as torch's separable kernels:
applied as a dense (out, in) weight matrix per spatial dim. lanczos exists only with antialias.
"""
import functools
import math

import numpy as np

from .functional_conv import _keeps_channels_last
from .. import _functions

_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "lanczos", "area")
_MODE_LIST = "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact"
_AA_SIZE = {"bilinear": 2, "bicubic": 4, "lanczos": 6}  # taps of each antialias filter at scale 1


def _F():
    return _functions  # imported above: vibetensor.torch imports _functions before nn


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
    """torch's antialiased resampling weights along one dim as an (n_out, n_in) matrix: output i is centred at
    scale * (i + 0.5), its filter support (1 or 2, times the scale when downsampling) clipped to the input and
    its weights normalised to sum 1."""
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

    w = np.zeros((n_out, n_in), dtype=ftype)
    for i in range(n_out):
        center = scale * ftype(i + 0.5)
        lo = max(int(center - support + ftype(0.5)), 0)
        size = min(max(min(int(center + support + ftype(0.5)), n_in) - lo, 0), max_size)
        taps = filt((np.arange(lo, lo + size).astype(ftype) - center + ftype(0.5)) * invscale).astype(ftype)
        total = taps.sum(dtype=ftype)
        w[i, lo:lo + size] = taps / total if total != 0 else taps
    return w


@_keeps_channels_last
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    from .._select_ops import index_select

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
        from . import functional as NF

        pool = (NF.adaptive_avg_pool1d, NF.adaptive_avg_pool2d, NF.adaptive_avg_pool3d)[input.dim() - 3]
        return pool(input, sizes)
    out = input
    for k, (n_out, s) in enumerate(zip(sizes, given)):
        d, n_in = k + 2, input.shape[k + 2]
        plan = _dim_plan(mode, antialias, n_in, n_out, s, bool(align_corners), input.dtype, input.device)
        if antialias:
            out = (out.transpose(d, -1) @ plan).transpose(d, -1)
        elif mode in _LINEAR:
            i0, i1, lam = plan
            shape = [1] * input.dim()
            shape[d] = n_out
            a, b = index_select(out, d, i0), index_select(out, d, i1)
            out = a + (b - a) * lam.reshape(shape)
        elif mode == "bicubic":
            shape = [1] * input.dim()
            shape[d] = n_out
            terms = [index_select(out, d, r) * w.reshape(shape) for r, w in zip(*plan)]
            out = terms[0] + terms[1] + terms[2] + terms[3]
        else:
            out = index_select(out, d, plan)
    return out


# Note [Resampling plans are cached]
# One spatial dim's source indices and weights depend only on the sizes, the given scale, the mode and the
# input's dtype and device. They are made once (NumPy on the host, then copied to the device) and kept, so a
# model that resamples the same shapes every step (a U-Net's upsampling, a diffusion model's) pays neither the
# host math nor the host-to-device copies again: on a GPU those copies were most of a small interpolate's time.
# The kept tensors are internal: index_select and the blend read them; nothing writes them.
@functools.lru_cache(maxsize=256)
def _dim_plan(mode, antialias, n_in, n_out, s, align_corners, dtype, device):
    F = _F()
    ftype = np.float64 if str(dtype).endswith("float64") else np.float32

    def values(a):
        return F.tensor(a.tolist(), dtype=dtype, device=device)

    def indices(a):
        return F.tensor(a.tolist(), device=device)

    if antialias:
        return values(_aa_weights(n_in, n_out, s, align_corners, mode, ftype).T)
    if mode in _LINEAR:
        i0, i1, lam = _linear_weights(n_in, n_out, s, align_corners, ftype)
        return indices(i0), indices(i1), values(lam)
    if mode == "bicubic":
        rows, weights = _cubic_weights(n_in, n_out, s, align_corners, ftype)
        return [indices(r) for r in rows], [values(w) for w in weights]
    return indices(_nearest_index(n_in, n_out, s, mode == "nearest-exact", ftype))


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
