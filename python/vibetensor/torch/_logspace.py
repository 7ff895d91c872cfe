"""torch.logspace: `steps` values base ** e for exponents e evenly spaced from start to end, computed as torch's
CPU kernel computes them so that the results are bit-equal: start and end are first converted to the output
dtype (an integer dtype truncates them, and refuses a value it cannot hold; one step is a fill with
base ** start), the step (end - start) / (steps - 1)
is taken in float64, the first half of the exponents counts up from start and the second half down from end, and
each power is taken in float64 (libm's pow) then rounded to the output dtype (truncated for integer dtypes).
float64 results are bit-equal to torch's; torch's narrower float kernels round a few ulp differently; integer
results beyond the dtype's range are unspecified, as in torch (a C++ cast out of range)."""
import math

import numpy as np

from .._C import core as _core
from ._factory_layout import _check_layout
from ._functions import _factory_device, _requiring_grad, tensor

_NP = {"float16": np.float16, "bfloat16": np.float32, "float32": np.float32, "float64": np.float64,
       "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64}


def _scalar(x, what):
    if isinstance(x, _core.Tensor):
        if x.dim() != 0:
            raise RuntimeError(f"logspace only supports 0-dimensional start and end tensors, but got {what} with "
                               f"{x.dim()} dimension(s).")
        return x.item()
    return x


_TORCH_NAMES = {"bool": "Bool"}
_C_NAMES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int", "int64": "int64_t"}


def _to_int(v, name):
    """An integer output dtype's conversion of a Scalar: truncation, and an error where it overflows."""
    info = np.iinfo(_NP[name])
    if not math.isfinite(v) or not info.min <= math.trunc(v) <= info.max:
        raise RuntimeError(f"value cannot be converted to type {_C_NAMES[name]} without overflow")
    return math.trunc(v)


def _as_float_dtype(v, name):
    if name != "bfloat16":
        return float(_NP[name](v))
    bits = np.array(v, dtype=np.float32).view(np.uint32)  # round to nearest even on the upper 16 bits
    bits = (bits + ((bits >> 16) & 1) + np.uint32(0x7FFF)) & np.uint32(0xFFFF0000)
    return float(bits.view(np.float32))


def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, requires_grad=False):
    if layout is not None:
        _check_layout(layout, "logspace")
    start, end = _scalar(start, "start"), _scalar(end, "end")
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool):
        raise TypeError(f"logspace(): argument 'steps' must be int, not {type(steps).__name__}")
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    out_dtype = _core.parse_dtype(dtype) if dtype is not None else _core.dtype.float32
    name = str(out_dtype).split(".")[-1]
    if name not in _NP:
        raise NotImplementedError(f'"logspace_cpu" not implemented for \'{_TORCH_NAMES.get(name, name)}\'')
    integral = name in _C_NAMES
    base = float(base)
    if steps == 1:  # a fill with base ** start (start unconverted), whose value is checked as one
        vals = [math.pow(base, float(start))]
        if integral:
            vals = [_to_int(vals[0], name)]
    elif steps > 1:
        if integral:
            start, end = _to_int(start, name), _to_int(end, name)
        else:  # the Scalars as the output dtype holds them
            start, end = _as_float_dtype(start, name), _as_float_dtype(end, name)
        step = (end - start) / (steps - 1)
        half = steps // 2
        vals = [math.pow(base, start + step * i) if i < half else math.pow(base, end - step * (steps - i - 1))
                for i in range(steps)]
        if integral:
            vals = [math.trunc(v) for v in vals]
    else:
        vals = []
    arr = np.array(vals, dtype=np.float64 if not integral else np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        arr = arr.astype(_NP[name]) if name != "bfloat16" else arr
    out = tensor(arr, dtype=out_dtype, device=_factory_device(device))
    return _requiring_grad(out, requires_grad)


__all__ = ["logspace"]
