"""torch.tensor's dtype inference where the data holds NumPy objects: a NumPy scalar or array keeps its dtype
(torch.tensor(np.float64(1.5)) is float64, torch.tensor([obs_a, obs_b]) of float64 arrays is float64, a list of
np.int32 is int32), Python numbers count as the defaults (bool, int64, float32), and the leaves' dtypes promote
as torch promotes them (np.float64 among Python floats: float64; np.int32 beside a Python float: float32).
Data of Python numbers only is left to the caller's inference (None), so the common case costs one scan."""
import numpy as np

from .._C import core as _core

_D = _core.dtype
_FROM_NUMPY = {np.dtype(np.bool_): _D.bool, np.dtype(np.uint8): _D.uint8, np.dtype(np.int8): _D.int8,
               np.dtype(np.int16): _D.int16, np.dtype(np.int32): _D.int32, np.dtype(np.int64): _D.int64,
               np.dtype(np.float16): _D.float16, np.dtype(np.float32): _D.float32, np.dtype(np.float64): _D.float64}
# (uint16/32/64 have no vibetensor dtype: their values become int64, as tensor() converts such arrays)
for _u in (np.uint16, np.uint32, np.uint64):
    _FROM_NUMPY[np.dtype(_u)] = _D.int64


def _leaf_dtype(x):
    """(dtype, from NumPy?) of one leaf; None for what this inference does not handle."""
    if isinstance(x, (np.ndarray, np.generic)):
        d = _FROM_NUMPY.get(x.dtype)
        return None if d is None else (d, True)
    if isinstance(x, bool):
        return _D.bool, False
    if isinstance(x, int):
        return _D.int64, False
    if isinstance(x, float):
        return _D.float32, False
    return None


_PYTHON_NUMBERS = {bool: _D.bool, int: _D.int64, float: _D.float32}


def numpy_aware_dtype(data):
    """The dtype torch infers for `data` (not an ndarray) when NumPy objects are among its leaves, else None."""
    found_numpy = False
    result = None
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            kinds = set(map(type, x))  # at C speed: a long list of Python numbers costs no per-element Python
            if kinds <= _PYTHON_NUMBERS.keys():
                for k in kinds:
                    d = _PYTHON_NUMBERS[k]
                    result = d if result is None else _core.promote_types(result, d)
            else:
                stack.extend(x)
            continue
        leaf = _leaf_dtype(x)
        if leaf is None:
            return None  # complex numbers, tensors, other objects: the caller's inference decides
        d, from_numpy = leaf
        found_numpy = found_numpy or from_numpy
        result = d if result is None else _core.promote_types(result, d)
    return result if found_numpy else None
