"""torch.testing.assert_close for test code written against torch: |actual - expected| <= atol + rtol |expected|
elementwise, with torch's default tolerances per dtype (float16 1e-3 / 1e-5, bfloat16 1.6e-2 / 1e-5, float32
1.3e-6 / 1e-5, float64 1e-7 / 1e-7, exact for integers and bools), NaN equal only with equal_nan, infinities
equal only to themselves; shapes, dtypes (check_dtype) and devices (check_device) must agree. Sequences and
mappings compare item by item; Python numbers as 0-dim values. The failure is an AssertionError in torch's
words (mismatched elements, the greatest absolute and relative differences and where)."""
from __future__ import annotations

import collections.abc
import numbers

import numpy as np

from .._C import core as _core

Tensor = _core.Tensor
_TOLS = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5), "float64": (1e-7, 1e-7)}


def _name(dtype):
    return str(dtype).split(".")[-1]


def _tolerances(dtypes, rtol, atol):
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got no "
                         f"{'rtol' if rtol is None else 'atol'}.")
    if rtol is not None:
        return rtol, atol
    pairs = [_TOLS.get(d, (0.0, 0.0)) for d in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_dtype, check_device, msg, where):
    if tuple(actual.shape) != tuple(expected.shape):
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: {tuple(actual.shape)} != "
                                    f"{tuple(expected.shape)}.{where}")
    if check_device and str(actual.device) != str(expected.device):
        raise AssertionError(msg or f"The values for attribute 'device' do not match: {actual.device} != "
                                    f"{expected.device}.{where}")
    if check_dtype and actual.dtype != expected.dtype:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: {actual.dtype} != "
                                    f"{expected.dtype}.{where}")
    rtol, atol = _tolerances({_name(actual.dtype), _name(expected.dtype)}, rtol, atol)
    a = actual.detach().cpu().double().numpy()
    e = expected.detach().cpu().double().numpy()
    with np.errstate(all="ignore"):
        diff = np.abs(a - e)
        close = (a == e) | (np.isfinite(a) & np.isfinite(e) & (diff <= atol + rtol * np.abs(e)))
        if equal_nan:
            close |= np.isnan(a) & np.isnan(e)
    if close.all():
        return
    if msg:
        raise AssertionError(msg)
    kind = "Scalars" if a.ndim == 0 else "Tensor-likes"
    verdict = "equal" if rtol == 0 and atol == 0 else "close"
    allowed = ("", "") if verdict == "equal" else (f" (up to {atol} allowed)", f" (up to {rtol} allowed)")
    bad = ~close
    total = close.size
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = np.where(e != 0, diff / np.abs(np.where(e != 0, e, 1)), np.where(diff == 0, 0.0, np.inf))
    i_abs = np.unravel_index(np.argmax(np.where(bad, diff, -1)), a.shape) if a.ndim else ()
    i_rel = np.unravel_index(np.argmax(np.where(bad, rel, -1)), a.shape) if a.ndim else ()
    raise AssertionError(
        f"{kind} are not {verdict}!\n\nMismatched elements: {int(bad.sum())} / {total} "
        f"({100 * bad.sum() / total:.1f}%)\n"
        f"Greatest absolute difference: {diff[i_abs]} at index {tuple(map(int, i_abs))}{allowed[0]}\n"
        f"Greatest relative difference: {rel[i_rel]} at index {tuple(map(int, i_rel))}{allowed[1]}{where}")


def _as_tensor(x):
    if isinstance(x, Tensor):
        return x
    import vibetensor.torch as vt
    return vt.tensor(x)


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False, msg=None, _where=""):
    if isinstance(actual, Tensor) or isinstance(expected, Tensor):
        if not (isinstance(actual, (Tensor, numbers.Number)) and isinstance(expected, (Tensor, numbers.Number))):
            raise TypeError(f"No comparison pair was able to handle inputs of type {type(actual)} and "
                            f"{type(expected)}.")
        return _compare_tensors(_as_tensor(actual), _as_tensor(expected), rtol, atol, equal_nan, check_dtype,
                                check_device, msg, _where)
    if isinstance(actual, numbers.Number) and isinstance(expected, numbers.Number):
        if check_dtype and type(actual) is not type(expected):
            raise AssertionError(msg or f"The values for attribute 'dtype' do not match: {type(actual)} != "
                                        f"{type(expected)}.{_where}")
        return _compare_tensors(_as_tensor(actual), _as_tensor(expected), rtol, atol, equal_nan, False, False, msg,
                                _where)
    kwargs = dict(rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=check_device, check_dtype=check_dtype,
                  msg=msg)
    if isinstance(actual, collections.abc.Mapping) and isinstance(expected, collections.abc.Mapping):
        if set(actual) != set(expected):
            raise AssertionError(f"The keys of the mappings do not match:\nMissing keys in the actual mapping: "
                                 f"{sorted(map(repr, set(expected) - set(actual)))}\nAdditional keys in the actual "
                                 f"mapping: {sorted(map(repr, set(actual) - set(expected)))}")
        for k in expected:
            assert_close(actual[k], expected[k], _where=f"{_where}\n\nThe failure occurred for item [{k!r}]", **kwargs)
        return
    seq = (collections.abc.Sequence,)
    if isinstance(actual, seq) and isinstance(expected, seq) and not isinstance(actual, str):
        if len(actual) != len(expected):
            raise AssertionError(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for i, (x, y) in enumerate(zip(actual, expected)):
            assert_close(x, y, _where=f"{_where}\n\nThe failure occurred for item [{i}]", **kwargs)
        return
    raise TypeError(f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}.")
