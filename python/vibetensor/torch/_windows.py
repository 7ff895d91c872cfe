"""torch's window factories: hann_window, hamming_window, blackman_window, bartlett_window and kaiser_window, with
torch's signatures (window_length, periodic=True, the shape parameters positionally or by keyword, and the
dtype/layout/device/requires_grad keywords), edge cases (length 0: empty; length 1: [1.]) and errors.

Speech code frames and windows waveforms itself (a feature frontend, sinc resampling) and calls these. The
cosine windows are computed as torch's kernels compute them, in the output dtype and in torch's order of
operations (arange, scale, cos, scale, shift), so values agree with torch's to the last bit wherever the two
cosines do; the Kaiser window is evaluated in float64 (numpy's i0) and rounded once, which is at least as
accurate as torch's evaluation in the output dtype. A periodic window of length N is the symmetric one of
length N + 1 without its last point."""
import math

import numpy as np

from .._C import core as _core
from ._factory_layout import _check_layout
from ._functions import _factory_device, _requiring_grad, arange, ones, tensor

_FLOAT = {"float16", "bfloat16", "float32", "float64"}
_OPTION_NAMES = {"int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
                 "uint8": "unsigned char", "bool": "bool"}


def _setup(name, window_length, dtype, layout, device):
    if not isinstance(window_length, (int, np.integer)) or isinstance(window_length, bool):
        raise TypeError(f"{name}(): argument 'window_length' (position 1) must be int, not "
                        f"{type(window_length).__name__}")
    if layout is not None:
        _check_layout(layout, name)
    if window_length < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
    dtype = _core.dtype.float32 if dtype is None else _core.parse_dtype(dtype)  # (the only default dtype)
    dname = str(dtype).split(".")[-1]
    if dname not in _FLOAT:
        raise RuntimeError(f"{name} expects floating point dtypes, got: TensorOptions(dtype="
                           f"{_OPTION_NAMES.get(dname, dname)}, device=cpu, layout=Strided (default))")
    return dtype, _factory_device(device)


def _trivial(window_length, dtype, device):
    if window_length == 0:
        return tensor(np.zeros(0, dtype=np.float32), dtype=dtype, device=device)
    if window_length == 1:
        return ones(1, dtype=dtype, device=device)
    return None


def _cosine(name, window_length, periodic, alpha, beta, dtype, layout, device, requires_grad):
    """alpha - beta * cos(2 pi k / (N - 1)): Hann (0.5, 0.5) and Hamming (0.54, 0.46 by default)."""
    dtype, device = _setup(name, window_length, dtype, layout, device)
    out = _trivial(window_length, dtype, device)
    if out is None:
        n = window_length + 1 if periodic else window_length
        out = arange(n, dtype=dtype, device=device)
        out.mul_(math.pi * 2.0 / (n - 1)).cos_().mul_(-beta).add_(alpha)
        out = out[:window_length].contiguous() if periodic else out
    return _requiring_grad(out, requires_grad)


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None, layout=None, device=None,
                   requires_grad=False):
    return _cosine("hamming_window", window_length, periodic, alpha, beta, dtype, layout, device, requires_grad)


def hann_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    return _cosine("hann_window", window_length, periodic, 0.5, 0.5, dtype, layout, device, requires_grad)


def blackman_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    dtype, device = _setup("blackman_window", window_length, dtype, layout, device)
    out = _trivial(window_length, dtype, device)
    if out is None:
        n = window_length + 1 if periodic else window_length
        w = arange(n, dtype=dtype, device=device).mul_(math.pi / (n - 1))
        out = w.mul(4).cos_().mul_(0.08) - w.mul(2).cos_().mul_(0.5) + 0.42
        out = out[:window_length].contiguous() if periodic else out
    return _requiring_grad(out, requires_grad)


def bartlett_window(window_length, periodic=True, *, dtype=None, layout=None, device=None, requires_grad=False):
    dtype, device = _setup("bartlett_window", window_length, dtype, layout, device)
    out = _trivial(window_length, dtype, device)
    if out is None:
        n = window_length + 1 if periodic else window_length
        out = arange(n, dtype=dtype, device=device).mul_(2.0 / (n - 1))
        first_half = ((n - 1) >> 1) + 1
        out[first_half:].mul_(-1).add_(2)
        out = out[:window_length].contiguous() if periodic else out
    return _requiring_grad(out, requires_grad)


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, layout=None, device=None,
                  requires_grad=False):
    dtype, device = _setup("kaiser_window", window_length, dtype, layout, device)
    out = _trivial(window_length, dtype, device)
    if out is None:
        n = window_length + 1 if periodic else window_length
        alpha = (n - 1) / 2.0
        k = np.arange(n, dtype=np.float64)
        vals = np.i0(beta * np.sqrt(np.abs(1 - ((k - alpha) / alpha) ** 2))) / np.i0(beta)
        vals = vals[:window_length] if periodic else vals
        out = tensor(vals, dtype=_core.dtype.float64, device=device).to(dtype)
    return _requiring_grad(out, requires_grad)


__all__ = ["bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window"]
