"""F.pad: constant, reflect, replicate and circular padding of a tensor's last dims, with torch's checks.

Note [Pads as gathers]
Every pad of the last 1-3 dims is a gather: output row j of a padded dim reads one input row (reflect mirrors j
about the edges, replicate clamps it, circular wraps it) or none (a constant pad's border), so one `_resample`
gather with a plan per padded dim (Note [Resampling plans] in core/src/ops/resample.h) writes the whole result,
borders included, in one launch for every dtype; its gradient is the adjoint gather (on CUDA by the adjoint
plans, one launch writing each input element once: Note [Adjoint plans]). Negative pads crop (the plans' rows
start inside the input). The plans depend only on the sizes, the pads, the device (and the dtype, for the
adjoint plans' weights), and are made once (Note [Resampling plans are cached]). Constant pads with a value
other than zero, and of more than three dims, fill the padded shape and copy the input into its middle view
(two kernels; the copy records the gradient, CopySlices).
"""
import functools
import numbers
import operator

import numpy as np

from ..._C import core as _core
from .._no_autocast import region_dtype
from .. import _functions
from ._adjoint_plans import adjoint_pass, plan_tensor
from ._checked_calls import CheckedCalls
from ._layouts import _keeps_channels_last

_HALF = (_core.dtype.float16, _core.dtype.bfloat16)
_resample = _core.op("vt::_resample")


def pad(input, pad, mode="constant", value=None):
    """torch's F.pad; a channels_last input gives a channels_last result in constant mode, and on the CPU in
    reflect and replicate modes too (torch's CUDA kernels of those, and circular mode, give contiguous ones)."""
    keeps = mode == "constant" or (mode != "circular" and not input.is_cuda)
    return (_pad_keeping_layout if keeps else _pad)(input, pad, mode, value)


def _pad(input, pad, mode="constant", value=None):
    if mode in ("reflect", "replicate") and not input.is_cuda and input.dtype in _HALF and (
            len(pad) // 2 <= (2 if mode == "reflect" else 3)) and region_dtype(input) is not None:
        input = input.float()  # torch's CPU autocast list: reflection_pad1d/2d, replication_pad1d/2d/3d
    if not (type(pad) in (tuple, list) and all(type(p) is int for p in pad)):
        pad = _ints(pad)
    if value is not None and not isinstance(value, numbers.Number):
        raise TypeError(f"pad(): argument 'value' (position 4) must be float, not {type(value).__name__}")
    key = (tuple(input.shape), input.device, input.dtype, mode, tuple(pad), value is None or value == 0)
    kind, arg = _CALLS.get(key, _checked_call, input, list(pad), mode, value)
    if kind == "gather":
        return _resample(input, *arg)
    return input.clone() if kind == "clone" else _filled_pad(input, *arg, value)


def _ints(pad):
    """pad as a list of Python ints (integers of other types through __index__), or torch's TypeError."""
    try:
        items = list(pad)
    except TypeError:
        raise TypeError(f"pad(): argument 'pad' (position 2) must be tuple of ints, not {type(pad).__name__}") from None
    for i, p in enumerate(items):
        if isinstance(p, bool) or not hasattr(type(p), "__index__"):
            raise TypeError("pad(): argument 'pad' (position 2) must be tuple of ints, but found element of type "
                            f"{type(p).__name__} at pos {i}")
    return [operator.index(p) for p in items]


# Note [Checked pad calls]
# A model pads the same shapes with the same arguments every step, and the checks cost more host time than the
# launch (F.pad of a [1, 1, 4, 4] tensor took 11.1 us on the devbox's CPU, 4.7 with this; torch's 5.8-7.0). A
# call whose arguments (the input's shape and device, the mode, the pads, whether the value is zero) were checked
# before reuses what that call found: its gather plans (Note [Pads as gathers]), or the filled pad's dims, or a
# clone.
_CALLS = CheckedCalls()


def _checked_call(input, pad, mode, value):
    """torch's checks, then how the call pads: ("gather", plans), ("filled", (dims, pads)) or ("clone", None)."""
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    k = len(pad) // 2
    if k > input.dim():
        raise RuntimeError("Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {input.dim()}")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode != "constant" and value not in (None, 0):
        raise RuntimeError(f"Padding mode \"{mode}\" doesn't take in value argument")
    if mode != "constant" and not (k <= 3 and k + 1 <= input.dim() <= k + 2):
        raise NotImplementedError(f"Padding size {len(pad)} is not supported for {input.dim()}D input tensor.")
    # the padded dims and their (left, right) pads, the last dim first (pad's order)
    dims = [input.dim() - 1 - i for i in range(k)]
    pads = [(pad[2 * i], pad[2 * i + 1]) for i in range(k)]
    _check_pads(mode, input, dims, pads)
    while pads and pads[-1] == (0, 0):
        dims.pop(), pads.pop()  # outer dims left as they are need no plan
    if not pads:
        return "clone", None  # (torch's pad always writes a new tensor)
    dims, pads = dims[::-1], pads[::-1]
    if mode == "constant" and (value not in (None, 0) or len(dims) > 3):
        return "filled", (dims, pads)
    sizes = tuple(input.shape[d] for d in dims)
    return "gather", _pad_plans(mode, sizes, tuple(pads), input.device, _adjoint_weights_dtype(input))


def _check_pads(mode, input, dims, pads):
    """torch's checks of each padded dim, with its messages."""
    shape, k = list(input.shape), len(dims)
    if mode in ("reflect", "replicate") and 0 in shape[1 if input.dim() == k + 2 else 0:]:
        raise RuntimeError(f"Expected {k + 1}D or {k + 2}D (batch mode) tensor with possibly 0 batch size and other "
                           f"non-zero dimensions for input, but got: {shape}")
    for i, (d, (left, right)) in enumerate(zip(dims, pads)):
        n = shape[d]
        out, cropped = n + left + right, n - max(-left, 0) - max(-right, 0)
        if mode == "circular":
            if left > n or right > n or (out > 0 and (left > cropped or right > cropped)):
                raise RuntimeError("Padding value causes wrapping around more than once.")
            if out < 0:
                raise RuntimeError("Negative padding value is resulting in an empty dimension")
            continue
        if k == 1 and mode != "constant" and out < 1:
            raise RuntimeError(f"input (W: {n}) is too small. Calculated output W: {out}")
        if cropped < 0:  # (torch crops first, by narrow)
            raise RuntimeError("narrow(): length must be non-negative.")
        if out < 0:
            raise RuntimeError(f"The input size {n}, plus negative padding {left} and {right} resulted in a negative "
                               f"output size, which is invalid. Check dimension {d} of your input.")
        if mode == "reflect" and (left >= n or right >= n):
            raise RuntimeError(f"Argument #{4 + 2 * i}: Padding size should be less than the corresponding input "
                               f"dimension, but got: padding ({left}, {right}) at dimension {d} of input {shape}")


def _adjoint_weights_dtype(input):
    """The weights dtype of the gather's adjoint plans (Note [Adjoint plans]) for a floating input, else None
    (other dtypes have no gradient)."""
    if not input.is_floating_point():
        return None
    return _core.dtype.float64 if input.dtype == _core.dtype.float64 else _core.dtype.float32


@functools.lru_cache(maxsize=256)
def _pad_plans(mode, sizes, pads, device, adjoint_wtype):
    """The _resample arguments after the input: one gather plan per padded dim (Note [Pads as gathers]), output
    row j reading input row rows[j] or none (-1) in a constant pad's border, no weights, and the adjoint plans
    where adjoint_wtype is given: on CUDA always, on the CPU where the adjoint is a gather too (a constant or
    circular pad reads each input row at most once, so its gradient is a crop, rows copied whole; reflect and
    replicate read edge rows twice, and the CPU's _resample_backward adds those in place). Reflect and
    replicate place output row j at input row j - left of the whole input, before mirroring or clamping, so a
    negative pad on one side does not change the other side's rows
    (torch's kernels); circular wraps within the rows a negative pad leaves (torch's crop, then pad; a pad
    wider than those rows is refused, where torch's copies would overlap)."""
    plans = []
    for n, (left, right) in zip(sizes, pads):
        if mode == "circular":
            start = max(-left, 0)
            m = n - start - max(-right, 0)  # the rows left after cropping
            j = np.arange(-max(left, 0), m + max(right, 0))
            rows = np.mod(j, m) + start if m else j
        else:
            j = np.arange(-left, n + right)
            if mode == "reflect":
                j = np.abs(j)
                j = np.where(j >= n, 2 * (n - 1) - j, j)
            elif mode == "replicate":
                j = np.clip(j, 0, n - 1)
            rows = np.where((j >= 0) & (j < n), j, -1)
        plans.append((rows[:, None].astype(np.int64), None))
    indices = [plan_tensor(r, _core.dtype.int64, device) for r, _ in plans]
    if adjoint_wtype is None:
        return indices, []
    adjoint = adjoint_pass(plans, sizes, adjoint_wtype, device)
    if device.type != "cuda" and adjoint[1]:
        return indices, []
    return (indices, []) + adjoint


def _filled_pad(input, dims, pads, value):
    """A tensor of the padded shape filled with value, input (cropped where a pad is negative) copied into its
    middle: two kernels however many dims are padded; the copy into the view records input's gradient."""
    x, shape, spans = input, list(input.shape), []
    for d, (left, right) in zip(dims, pads):
        n = input.shape[d]
        start, stop = max(-left, 0), n - max(-right, 0)
        x = x.narrow(d, start, stop - start)
        shape[d] = max(left, 0) + (stop - start) + max(right, 0)
        spans.append((d, max(left, 0), stop - start))
    out = _functions.full(shape, 0 if value is None else value, dtype=input.dtype, device=input.device)
    middle = out
    for d, start, n in spans:
        middle = middle.narrow(d, start, n)
    middle.copy_(x)
    return out


_pad_keeping_layout = _keeps_channels_last(_pad)
