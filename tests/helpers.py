"""Helpers for differential tests: vibetensor (``vt``) against PyTorch (CPU) and NumPy.

Typical use::

    a = pair((3, 1, 5), "float32", noncontig="transpose", rng=rng)   # Pair(v=vt tensor, t=torch tensor)
    check_op(lambda m, x: m.exp(x), a)                                # runs on both, compares (or exception type)

``check_op`` calls ``fn(m, *args)`` with ``m`` = ``torch`` and then ``m`` = ``vibetensor.torch``; every ``Pair``
in ``args``/``kwargs`` (also inside lists and tuples) is replaced by its side. When torch raises, vt must raise
the same kind of Python exception (IndexError / TypeError / ValueError / RuntimeError, NotImplementedError
counting as RuntimeError); otherwise results are compared with ``assert_same``.
"""
from __future__ import annotations

import math
import re
import warnings
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

# --------------------------------------------------------------------------------------------- dtypes

ALL_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
INT_DTYPES = ["uint8", "int8", "int16", "int32", "int64"]
FLOAT_DTYPES = ["float16", "bfloat16", "float32", "float64"]
NUMERIC_DTYPES = INT_DTYPES + FLOAT_DTYPES
INTEGRAL_DTYPES = ["bool"] + INT_DTYPES  # torch's "integral incl. bool"
NUMPY_DTYPES = [d for d in ALL_DTYPES if d != "bfloat16"]  # dtypes numpy can represent

_NP = {
    "bool": np.bool_, "uint8": np.uint8, "int8": np.int8, "int16": np.int16, "int32": np.int32,
    "int64": np.int64, "float16": np.float16, "float32": np.float32, "float64": np.float64,
}


def vt_dtype(name: str):
    return getattr(vt, name)


def torch_dtype(name: str):
    return getattr(torch, name)


def np_dtype(name: str):
    return _NP[name]


def dtype_name(d) -> str:
    """Canonical name ("float32", ...) of a vt dtype, torch dtype, numpy dtype or name string."""
    if isinstance(d, str):
        return d
    if isinstance(d, torch.dtype):
        return str(d).split(".")[-1]
    for n in ALL_DTYPES:
        try:
            if d == getattr(vt, n):
                return n
        except Exception:
            pass
    try:
        return np.dtype(d).name
    except Exception:
        return repr(d)


def is_vt_tensor(x) -> bool:
    return isinstance(x, vt.Tensor)


def is_float(name: str) -> bool:
    return name in FLOAT_DTYPES


# ------------------------------------------------------------------------------------------- tolerances

# (rtol, atol) for comparing a result of this dtype against torch. 16-bit floats allow ~1-2 ulp disagreement
# (both sides compute in float32 and round, but the float32 math may differ by an ulp).
TOLS = {
    "float16": (2e-3, 1e-3),
    "bfloat16": (1.6e-2, 1e-2),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
}


def tols(name: str, rtol=None, atol=None):
    r, a = TOLS.get(name, (0.0, 0.0))
    return (r if rtol is None else rtol), (a if atol is None else atol)


# ------------------------------------------------------------------------------------------- inputs


class Pair(NamedTuple):
    """The same values as a vibetensor tensor (``v``) and a torch tensor (``t``)."""

    v: Any
    t: Any


def as_rng(rng=None, seed=None) -> np.random.Generator:
    if rng is not None:
        return rng
    if seed is None:
        raise ValueError("pass rng= or seed= (use the `rng` / `seed` fixtures so failures print the seed)")
    return np.random.default_rng(seed)


def random_array(shape, dtype: str, rng: np.random.Generator, *, low=None, high=None, nonzero=False):
    """Random numpy values for `dtype` (float32 values for bfloat16, to be rounded on both sides)."""
    shape = tuple(shape)
    if dtype == "bool":
        if nonzero:  # a bool divisor must be True everywhere (False -> integer division by zero)
            return np.ones(shape, dtype=np.bool_)
        return np.asarray(rng.random(shape) < 0.5, dtype=np.bool_)
    if dtype in INT_DTYPES:
        lo = (0 if dtype == "uint8" else -16) if low is None else int(low)
        hi = 16 if high is None else int(high)
        arr = np.asarray(rng.integers(lo, hi, size=shape), dtype=_NP[dtype])
        if nonzero:
            arr[arr == 0] = 1
        return arr
    lo = -4.0 if low is None else float(low)
    hi = 4.0 if high is None else float(high)
    vals = np.asarray(rng.uniform(lo, hi, size=shape))
    if nonzero:
        small = np.abs(vals) < 0.125
        vals[small] = np.where(vals[small] < 0, -0.5, 0.5)
    return vals.astype(np.float32 if dtype == "bfloat16" else _NP[dtype])


def pair_from_numpy(arr: np.ndarray, dtype: str | None = None) -> Pair:
    """Independent copies of `arr` on both sides; `dtype="bfloat16"` converts a float array on each side."""
    arr = np.array(arr, copy=True, order="C")  # (np.ascontiguousarray would turn 0-dim into 1-dim)
    if dtype == "bfloat16":
        a32 = arr.astype(np.float32)
        return Pair(vt.from_numpy(a32.copy()).to(vt.bfloat16), torch.from_numpy(a32.copy()).to(torch.bfloat16))
    if dtype is not None:
        arr = arr.astype(_NP[dtype])
    return Pair(vt.from_numpy(arr.copy()), torch.from_numpy(arr.copy()))


def pair_from_values(values, dtype: str) -> Pair:
    """A pair from (nested) Python values, e.g. special floats."""
    src = np.asarray(values, dtype=np.float64 if dtype in FLOAT_DTYPES else None)
    if dtype == "bfloat16":
        return pair_from_numpy(src.astype(np.float32), "bfloat16")
    return pair_from_numpy(src.astype(_NP[dtype]))


NONCONTIG_KINDS = ["transpose", "slice", "expand", "offset"]


def _noncontig_plan(shape, kind):
    """(base shape, transform) such that transform(base) has `shape` and the requested layout."""
    shape = tuple(shape)
    nd = len(shape)
    if kind is True:
        kind = "transpose"
    if kind == "transpose" and nd < 2:
        kind = "slice"
    if kind == "expand" and all(s == 1 for s in shape):
        kind = "slice"
    if nd == 0 or kind in (None, False):
        return shape, lambda t: t
    if kind == "transpose":
        base = shape[:-2] + (shape[-1], shape[-2])
        return base, lambda t: t.transpose(-1, -2)
    if kind == "slice":
        base = shape[:-1] + (shape[-1] * 2,)
        return base, lambda t: t[..., ::2]
    if kind == "expand":
        d = next(i for i, s in enumerate(shape) if s != 1)
        base = shape[:d] + (1,) + shape[d + 1:]
        return base, lambda t: t.expand(*shape)
    if kind == "offset":  # contiguous, but with a non-zero storage offset
        base = (shape[0] + 1,) + shape[1:]
        return base, lambda t: t[1:]
    raise ValueError(f"unknown noncontig kind {kind!r}")


def pair(shape, dtype: str = "float32", *, noncontig=False, low=None, high=None, seed=None, rng=None,
         nonzero=False) -> Pair:
    """A (vt, torch) pair of random tensors with identical values, built through numpy.

    noncontig: False, True (= "transpose"), "transpose", "slice" (every other element of the last dim),
    "expand" (a stride-0 broadcast view) or "offset" (contiguous with a storage offset). The same view
    operation is applied on both sides, so strides and storage offsets match torch's too.
    """
    g = as_rng(rng, seed)
    base_shape, view = _noncontig_plan(shape, noncontig)
    p = pair_from_numpy(random_array(base_shape, dtype, g, low=low, high=high, nonzero=nonzero), dtype)
    return Pair(view(p.v), view(p.t))


def special_values(dtype: str):
    """Interesting float values representable in `dtype` (flat list)."""
    vals = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -2.5, 3.0, 1e-3, -7.25, 100.0, math.inf, -math.inf, math.nan]
    if dtype in ("float32", "float64", "bfloat16"):
        vals += [1e30, -1e-30]
    if dtype == "float64":
        vals += [1e300, 5e-324]
    return vals


# ------------------------------------------------------------------------------------------ comparing


def to_numpy(x) -> np.ndarray:
    """A detached numpy copy of a vt or torch tensor (from any device); bfloat16 goes through float32."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            x = x.to(torch.float32)
        return np.array(x.numpy(), copy=True)
    if is_vt_tensor(x):
        x = x.cpu()
        if x.dtype == vt.bfloat16:
            x = x.to(vt.float32)
        return np.array(x.numpy(), copy=True)
    return np.asarray(x)


def _compare_arrays(a: np.ndarray, e: np.ndarray, name: str, rtol, atol, equal_nan, msg):
    if e.dtype.kind in "biu" and a.dtype.kind in "biu":
        if not np.array_equal(a, e):
            bad = np.argwhere(a != e)
            first = tuple(bad[0]) if len(bad) else ()
            raise AssertionError(
                f"{msg}values differ ({len(bad)} of {e.size} elements), first at {first}: "
                f"vt={a[first] if a.ndim else a} torch={e[first] if e.ndim else e}\nvt={a!r}\ntorch={e!r}"
            )
        return
    r, t = tols(name, rtol, atol)
    np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=r, atol=t, equal_nan=equal_nan,
                               err_msg=msg)


def assert_same(actual, expected, *, rtol=None, atol=None, check_dtype=True, equal_nan=True, msg=""):
    """Assert a vt result equals a torch result: dtype name, shape and values (nan == nan).

    Handles tensors, (named) tuples and lists of results, torch.Size, and Python scalars.
    """
    if isinstance(expected, torch.Tensor):
        assert is_vt_tensor(actual), f"{msg}expected a vt.Tensor, got {type(actual).__name__}: {actual!r}"
        en = dtype_name(expected.dtype)
        an = dtype_name(actual.dtype)
        if check_dtype:
            assert an == en, f"{msg}dtype: vt {an} vs torch {en}"
        assert tuple(actual.shape) == tuple(expected.shape), (
            f"{msg}shape: vt {tuple(actual.shape)} vs torch {tuple(expected.shape)}"
        )
        _compare_arrays(to_numpy(actual), to_numpy(expected), en, rtol, atol, equal_nan, msg)
        return
    if isinstance(expected, torch.Size):
        assert tuple(actual) == tuple(expected), f"{msg}size: vt {tuple(actual)} vs torch {tuple(expected)}"
        return
    if isinstance(expected, torch.dtype):
        assert dtype_name(actual) == dtype_name(expected), f"{msg}dtype: vt {actual} vs torch {expected}"
        return
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)), f"{msg}expected a sequence, got {type(actual).__name__}"
        assert len(actual) == len(expected), f"{msg}length: vt {len(actual)} vs torch {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, rtol=rtol, atol=atol, check_dtype=check_dtype, equal_nan=equal_nan,
                        msg=f"{msg}[{i}] ")
        return
    if isinstance(expected, bool):
        assert isinstance(actual, bool), f"{msg}expected bool, got {type(actual).__name__}: {actual!r}"
        assert actual == expected, f"{msg}vt {actual} vs torch {expected}"
        return
    if isinstance(expected, int):
        assert isinstance(actual, int) and not isinstance(actual, bool), (
            f"{msg}expected int, got {type(actual).__name__}: {actual!r}"
        )
        assert actual == expected, f"{msg}vt {actual} vs torch {expected}"
        return
    if isinstance(expected, float):
        assert isinstance(actual, float), f"{msg}expected float, got {type(actual).__name__}: {actual!r}"
        if math.isnan(expected):
            assert math.isnan(actual), f"{msg}vt {actual} vs torch nan"
        else:
            r = 1e-6 if rtol is None else rtol
            a = 1e-6 if atol is None else atol
            assert math.isclose(actual, expected, rel_tol=r, abs_tol=a), f"{msg}vt {actual} vs torch {expected}"
        return
    if expected is None:
        assert actual is None, f"{msg}expected None, got {actual!r}"
        return
    assert actual == expected, f"{msg}vt {actual!r} vs torch {expected!r}"


# ------------------------------------------------------------------------------------ differential runs

_EXC_KINDS = (IndexError, TypeError, ValueError, RuntimeError)


def made_tensor(m, data, dtype: str | None, **kw):
    """("ok", m.tensor(data, dtype=...)) or (the exception's type, None): m is torch or vibetensor.torch."""
    try:
        return "ok", m.tensor(data, dtype=None if dtype is None else getattr(m, dtype), **kw)
    except Exception as e:  # noqa: BLE001 - the exception's type is compared
        return type(e), None


def exception_kind(exc: BaseException) -> type:
    """The Python exception class vt must raise for a torch exception (NotImplementedError -> RuntimeError)."""
    for k in _EXC_KINDS:
        if isinstance(exc, k):
            return k
    return type(exc)


def assert_raises_like(torch_exc: BaseException, thunk, what: str = ""):
    kind = exception_kind(torch_exc)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            thunk()
    except Exception as e:  # noqa: BLE001
        if not isinstance(e, kind):
            raise AssertionError(
                f"{what}vt raised {type(e).__name__}({e}) but torch raised {type(torch_exc).__name__}"
                f"({torch_exc}); expected a {kind.__name__}"
            ) from e
        return e
    raise AssertionError(f"{what}vt did not raise; torch raised {type(torch_exc).__name__}: {torch_exc}")


def side(x, i: int):
    """Pick side i (0 = vt, 1 = torch) of every Pair inside x."""
    if isinstance(x, Pair):
        return x[i]
    if isinstance(x, list):
        return [side(y, i) for y in x]
    if isinstance(x, tuple) and type(x) is tuple:
        return tuple(side(y, i) for y in x)
    if isinstance(x, dict):
        return {k: side(y, i) for k, y in x.items()}
    return x


def run_torch(fn, *args, **kwargs):
    """(result, None) or (None, exception) of fn(torch, ...)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(torch, *side(args, 1), **side(kwargs, 1)), None
    except Exception as e:  # noqa: BLE001
        return None, e


def _upcast(x):
    if isinstance(x, torch.Tensor) and x.dtype in (torch.float16, torch.bfloat16, torch.float32):
        return x.double()
    if isinstance(x, list):
        return [_upcast(y) for y in x]
    if isinstance(x, tuple) and type(x) is tuple:
        return tuple(_upcast(y) for y in x)
    return x


def _cast_like(r, e):
    if isinstance(e, torch.Tensor) and isinstance(r, torch.Tensor):
        return r.to(e.dtype)
    if isinstance(e, (tuple, list)) and isinstance(r, (tuple, list)):
        return type(e)(*[_cast_like(a, b) for a, b in zip(r, e)]) if hasattr(e, "_fields") else \
            type(e)(_cast_like(a, b) for a, b in zip(r, e))
    return r


def check_op(fn, *args, rtol=None, atol=None, check_dtype=True, equal_nan=True, msg="", upcast_ref=False,
             **kwargs):
    """Differential check of fn(m, *args, **kwargs) for m in (torch, vt). Returns (vt_result, torch_result),
    or None when torch raised (after asserting vt raised the same kind of exception).

    upcast_ref: also accept the result torch computes on float64 copies of the 16/32-bit float inputs, rounded
    to the dtype torch returns (for reductions: torch's CPU kernels accumulate some 16-bit ops, e.g. prod, in 16
    bits, and float32 norm overflows where a scaled/wider accumulation does not, so a more accurate
    implementation may legitimately differ from torch)."""
    expected, exc = run_torch(fn, *args, **kwargs)
    if exc is not None:
        assert_raises_like(exc, lambda: fn(vt, *side(args, 0), **side(kwargs, 0)), msg)
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        actual = fn(vt, *side(args, 0), **side(kwargs, 0))
    try:
        assert_same(actual, expected, rtol=rtol, atol=atol, check_dtype=check_dtype, equal_nan=equal_nan, msg=msg)
    except AssertionError as first:
        if not upcast_ref:
            raise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = _cast_like(fn(torch, *_upcast(side(args, 1)), **_upcast(side(kwargs, 1))), expected)
        try:
            assert_same(actual, ref, rtol=rtol, atol=atol, check_dtype=check_dtype, equal_nan=equal_nan, msg=msg)
        except AssertionError as second:
            raise AssertionError(f"matches neither torch nor the float64 reference.\nvs torch: {first}\n"
                                 f"vs float64 reference: {second}") from None
    return actual, expected


def assert_layout_same(v, t, msg=""):
    """Shape, strides, storage offset and contiguity flag of a vt view equal torch's."""
    assert tuple(v.shape) == tuple(t.shape), f"{msg}shape: vt {tuple(v.shape)} vs torch {tuple(t.shape)}"
    if t.numel() > 0:  # torch's strides of empty tensors are a convention, not a contract
        assert tuple(v.stride()) == tuple(t.stride()), f"{msg}stride: vt {tuple(v.stride())} vs torch {t.stride()}"
        assert v.storage_offset() == t.storage_offset(), (
            f"{msg}storage_offset: vt {v.storage_offset()} vs torch {t.storage_offset()}"
        )
        assert v.is_contiguous() == t.is_contiguous(), (
            f"{msg}is_contiguous: vt {v.is_contiguous()} vs torch {t.is_contiguous()}"
        )


def shape_regex(shape) -> str:
    """A loose regex matching a shape written as [2, 3], (2, 3), 2x3 or {2, 3}."""
    shape = tuple(shape)
    inner = r",\s*".join(str(s) for s in shape)
    cross = "x".join(str(s) for s in shape)
    return rf"(?:[\[\({{]\s*{inner}\s*,?\s*[\]\)}}]|\b{re.escape(cross)}\b)"


def shape_id(shape) -> str:
    return "x".join(map(str, shape)) if len(shape) else "scalar"


def fresh_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


# Shapes used across files: 0-dim, odd sizes, empty, broadcast-y and one multi-threaded size.
SMALL_SHAPES = [(), (1,), (7,), (3, 1, 5), (0, 4), (4, 6), (2, 3, 4)]
BIG_SHAPE = (100_003,)


def round_to(opt, dtype):
    """Rounds a float32 torch optimizer's params and state through `dtype`, as storing them in it would."""
    with torch.no_grad():
        for p in [p for g in opt.param_groups for p in g["params"]]:
            st = opt.state.get(p, {})
            for t in [p] + [v for k, v in st.items() if k != "step" and v is not None]:
                t.copy_(t.to(dtype).float())


# ------------------------------------------------------------------------------------------ module printing

# Note [Module printing across torch versions]
# vibetensor's modules print as torch 2.13's. torch 2.11 (the GPU machine's) printed LayerNorm without its bias
# flag: "LayerNorm((6,), eps=1e-05, elementwise_affine=True)" where 2.13 prints "..., elementwise_affine=True,
# bias=True)"; and its BatchNorm, InstanceNorm and GroupNorm had no bias argument at all, so they printed
# "GroupNorm(2, 4, eps=1e-05, affine=True)" without the ", bias=True" that follows affine in 2.13 and refused
# bias=False. Nothing else in the module printing of the two versions differs. as_installed_torch_prints removes
# exactly that flag, and only when the installed torch lacks it, so that a module printing comparison stays exact in
# everything else on either version; TORCH_NORMS_TAKE_BIAS lets a test skip the bias=False cases there.
_NORM_BIAS = re.compile(r"((?:elementwise_)?affine=(?:True|False)), bias=(?:True|False)")
TORCH_NORMS_TAKE_BIAS = "bias=" in repr(torch.nn.GroupNorm(1, 1))
TORCH_VERSION = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])


def as_installed_torch_prints(text: str) -> str:
    """vibetensor's printing of a module, as the installed torch would print the same module."""
    if "bias=" in repr(torch.nn.LayerNorm(1)) and TORCH_NORMS_TAKE_BIAS:  # looked up at each call: tests patch it
        return text
    return _NORM_BIAS.sub(r"\1", text)


def kernel_variant_fixture(get, set_, names):
    """A pytest fixture parametrised over the kernel variants among `names` (instruction sets, say) that this
    machine runs: set_(name) raises NotImplementedError for the others. Each test runs with its variant
    selected through set_ and the previous one (get()) restored after. Assign it to a module-level name."""
    old, supported = get(), []
    for name in names:
        try:
            set_(name)
            supported.append(name)
        except NotImplementedError:
            pass
    set_(old)

    @pytest.fixture(params=supported)
    def variant(request):
        before = get()
        set_(request.param)
        yield request.param
        set_(before)

    return variant
