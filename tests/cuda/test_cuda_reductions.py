"""CUDA reductions against torch on the GPU: sum/mean/prod/amax/amin/max/min/argmax/argmin/all/any, var/std
(correction), norm (p = 1, 2, 3, inf, ...), logsumexp, cumsum/cumprod -- every dtype, int/list/negative dims,
keepdim, dtype=, empty and 0-dim inputs, NaNs (max/min/argmax with NaN), non-contiguous inputs, reductions along
the inner, middle and outer dims, and full reductions of 10**6+7 and 2**22+3 elements.

Tolerances allow for a different summation order: float32 sums are compared to 1e-5 of the sum of |x|, 16-bit
floats at their own rounding (both sides accumulate in float32), and a result matching float64 math is accepted.

GPU run: PYTHONPATH=python python -m pytest tests/cuda -q -p no:cacheprovider
"""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import (
    CUDA_MARKS,
    Failures,
    dcheck,
    dpair,
    dpair_np,
    dpair_vals,
    dsame,
)
from helpers import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    INT_DTYPES,
    Pair,
    _noncontig_plan,
    special_values,
)
from reduction_cases import ARG, CUM, PROD
from reduction_cases import RED as BASE_RED

pytestmark = CUDA_MARKS


RED = {
    **BASE_RED,
    "all": lambda m, x, d, k: m.all(x) if d is None else m.all(x, d, keepdim=k),
    "any": lambda m, x, d, k: x.any() if d is None else x.any(d, keepdim=k),
}
EXTREME = {"amax", "amin", "max", "min"} | ARG
ACCUM = {"sum", "sum_meth", "mean", "prod", "cumsum", "cumprod", "var", "std", "norm", "logsumexp"}

SHAPE_DIMS = [
    ((), None), ((), 0), ((), -1), ((7,), None), ((7,), (0,)), ((7,), [-1]), ((3, 1, 5), 1), ((3, 1, 5), -1),
    ((3, 1, 5), (0, 2)), ((3, 1, 5), [-1, 0]), ((0, 4), 0), ((0, 4), 1), ((0, 4), None), ((4, 5, 6), 0),
    ((4, 5, 6), (1, 2)), ((4, 5, 6), (-1, 0)), ((4, 5, 6), -2), ((33, 17), 1), ((33, 17), None), ((1023,), 0),
]


def red_input(name, shape, dtype, rng, kind=False):
    if name in PROD:
        if dtype in FLOAT_DTYPES:
            return dpair(shape, dtype, noncontig=kind, low=0.6, high=1.5, rng=rng)
        return dpair(shape, dtype, noncontig=kind, low=0 if dtype == "uint8" else -1, high=2, rng=rng)
    if name in EXTREME or name in ("all", "any"):
        # a narrow range makes ties common (indices must be the first occurrence) and zeros for all/any
        base, view = _noncontig_plan(shape, kind)
        arr = rng.integers(0 if dtype == "uint8" else -4, 5, size=base)
        if dtype in FLOAT_DTYPES:
            arr = arr.astype(np.float32) / 2
        elif dtype == "bool":
            arr = arr > 0
        p = dpair_np(arr, dtype)
        return Pair(view(p.v), view(p.t))
    return dpair(shape, dtype, noncontig=kind, rng=rng)


def red_tol(name, dtype, n=1):
    if name not in ACCUM:
        return {}
    if dtype in ("float16", "bfloat16"):
        f16 = dtype == "float16"
        return {"upcast_ref": True, "rtol": 2e-3 if f16 else 1.6e-2,
                "atol": (2e-3 if f16 else 2e-2) if n < 1000 else (2e-2 if f16 else 5e-2)}
    if dtype == "float32" or dtype in INT_DTYPES + ["bool"]:  # (mean/var/norm of ints raise; sums are exact)
        return {"rtol": 1e-5, "atol": 1e-4 if n < 1000 else 5e-3, "upcast_ref": True}
    return {"rtol": 1e-10, "atol": 1e-10 if n < 1000 else 1e-8}


@pytest.mark.parametrize("name", list(RED))
def test_reduction_every_dtype(name, rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        for shape, dim in SHAPE_DIMS:
            if name in CUM and isinstance(dim, (tuple, list)):
                dim = dim[0]
            for keepdim in (False, True) if dim is not None and name not in CUM else (False,):
                with f.case(f"{name} {dtype} {shape} dim={dim} keepdim={keepdim}"):
                    x = red_input(name, shape, dtype, rng)
                    r = dcheck(lambda m, t, d, k: RED[name](m, t, d, k), x, dim, keepdim, **red_tol(name, dtype))
                    if r is not None and name in ("max", "min") and isinstance(dim, int):
                        dsame(r[0].values, r[1].values)
                        dsame(r[0].indices, r[1].indices)
    f.raise_if_any()


LAYOUT_NAMES = ["sum", "mean", "prod", "amax", "max", "argmin", "all", "var", "norm", "logsumexp", "cumsum"]


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_reduction_inner_middle_outer_and_noncontiguous(name, rng):
    f = Failures()
    for dtype in ["float32", "float16", "bfloat16", "float64", "int32", "uint8", "bool"]:
        x = red_input(name, (33, 65, 129), dtype, rng)
        for dim in (2, 1, 0, (0, 2), (1, 2), [0, 1], None):
            if name in CUM and not isinstance(dim, int):
                continue
            for keepdim in (False, True):
                with f.case(f"{name} {dtype} (33, 65, 129) dim={dim} keepdim={keepdim}"):
                    dcheck(lambda m, t, d, k: RED[name](m, t, d, k), x, dim, keepdim,
                           **red_tol(name, dtype, 129))
        for kind in ("transpose", "slice", "expand", "offset"):
            for dim in (0, 1, -1, (0, 2), None):
                d = 2 if name in CUM and not isinstance(dim, int) else dim
                with f.case(f"{name} {dtype} {kind} dim={d}"):
                    dcheck(lambda m, t, d: RED[name](m, t, d, False), red_input(name, (6, 5, 4), dtype, rng, kind), d,
                           **red_tol(name, dtype))
        with f.case(f"{name} {dtype} permuted (129, 33, 65) view"):
            dcheck(lambda m, t: RED[name](m, t.permute(2, 0, 1), 1, False), x, **red_tol(name, dtype, 129))
    f.raise_if_any()


def _sum_abs(p):
    return float(np.abs(p.t.detach().cpu().double().numpy()).sum())


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "int8",
                                   "bool"])
def test_full_reductions_large(dtype, rng):
    """10**6+7 elements: many blocks plus a tail; float tolerance from the sum of |x| (summation order)."""
    n = 10**6 + 7
    f = Failures()
    x = dpair((n,), dtype, rng=rng)
    c = {"float32": 1e-5, "float16": 1e-5, "bfloat16": 1e-5, "float64": 1e-12}.get(dtype, 0.0)
    sa = _sum_abs(x)
    base = {} if dtype not in FLOAT_DTYPES else {"upcast_ref": True, "rtol": red_tol("sum", dtype)["rtol"]}
    cases = [("sum", {**base, "atol": c * sa}), ("mean", {**base, "atol": c * sa / n + 1e-7}),
             ("norm", base), ("var", {**base, "rtol": 1e-4}),
             ("std", {**base, "rtol": 1e-4}), ("logsumexp", {**base, "rtol": max(1e-5, base.get("rtol", 0))})]
    for name, tol in cases:
        with f.case(f"{name} {dtype} n={n}"):
            dcheck(lambda m, t, nm: RED[nm](m, t, None, False), x, name, **tol)
    with f.case(f"sum {dtype} n={n} dtype=float64"):
        dcheck(lambda m, t: m.sum(t, dtype=m.float64), x, rtol=1e-9, atol=1e-9 * sa)
    e = red_input("amax", (n,), dtype, rng)  # many ties: the first index must win
    for name in ("amax", "amin", "max", "min", "argmax", "argmin", "all", "any"):
        with f.case(f"{name} {dtype} n={n}"):
            dcheck(lambda m, t, nm: RED[nm](m, t, None, False), e, name)
    with f.case(f"all/any {dtype} n={n}, one zero / one non-zero"):
        arr = np.ones(n, dtype=np.float32)
        arr[rng.integers(0, n)] = 0
        p = dpair_np(arr, dtype)
        dcheck(lambda m, t: (m.all(t), m.any(t == 0), t.all(), (t == 0).any()), p)
    with f.case(f"prod {dtype} n={n}"):
        vals = rng.uniform(0.9999, 1.0001, n) if dtype in FLOAT_DTYPES else np.where(rng.random(n) < 1e-3, -1, 1)
        if dtype in ("uint8", "bool"):
            vals = np.ones(n)
        dcheck(lambda m, t: m.prod(t), dpair_np(np.asarray(vals), dtype), **red_tol("prod", dtype, n))
    f.raise_if_any()


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64"])
def test_sum_huge(dtype, rng):
    n = 2**22 + 3
    x = dpair((n,), dtype, rng=rng)
    sa = _sum_abs(x)
    tol = {"upcast_ref": True, "rtol": 2e-3, "atol": 1e-5 * sa} if dtype != "int64" else {}
    dcheck(lambda m, t: m.sum(t), x, **tol)
    dcheck(lambda m, t: t[1:].sum(), x, **tol)
    dcheck(lambda m, t: t[:-3].view(2048, 2048).sum(0), x, **red_tol("sum", dtype, 2048))
    dcheck(lambda m, t: t[:-3].view(2048, 2048).sum(1), x, **red_tol("sum", dtype, 2048))
    # rows of several unrolled chunks and a remainder, one split each (reduce.cuh's inner vector path): the
    # chunk loop, then whole vectors, then single elements
    dcheck(lambda m, t: t[:299 * 13984].view(299, 13984)[:, :13981].sum(1), x, **red_tol("sum", dtype, 13981))
    dcheck(lambda m, t: m.amax(t), x)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "float16"])
def test_cumulative_large(dtype, rng):
    x = dpair((100_003,), dtype, low=0 if dtype in INT_DTYPES else None, high=4 if dtype in INT_DTYPES else None,
              rng=rng)
    tol = {} if dtype in INT_DTYPES else {"rtol": 1e-5, "atol": 1e-5 * _sum_abs(x), "upcast_ref": True}
    if dtype != "float16":  # a running 16-bit sum is too rounding-sensitive to compare
        dcheck(lambda m, t: m.cumsum(t, 0), x, **tol)
    y = dpair((317, 331), dtype, rng=rng)
    for d in (0, 1, -1):
        dcheck(lambda m, t, d: m.cumsum(t, d), y, d, **red_tol("cumsum", dtype, 331))
        dcheck(lambda m, t, d: m.cumsum(t.t(), d), y, d, **red_tol("cumsum", dtype, 331))
    z = dpair((64, 257), dtype, low=0.99 if dtype in FLOAT_DTYPES else 1, high=1.01 if dtype in FLOAT_DTYPES else 2,
              rng=rng)
    dcheck(lambda m, t: m.cumprod(t, 1), z, **red_tol("cumprod", dtype, 257))


@pytest.mark.parametrize("out", ["float64", "float32", "int64", "float16", "int32"])
def test_dtype_argument(out, rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        with f.case(f"{dtype} -> {out}"):
            x = dpair((4, 5), dtype, low=0 if dtype == "uint8" else -2, high=3, rng=rng)
            tol = red_tol("sum", out)
            dcheck(lambda m, t: m.sum(t, dtype=getattr(m, out)), x, **tol)
            dcheck(lambda m, t: m.sum(t, 1, dtype=getattr(m, out)), x, **tol)
            dcheck(lambda m, t: t.sum(dim=(0, 1), keepdim=True, dtype=getattr(m, out)), x, **tol)
            dcheck(lambda m, t: m.prod(t, 0, dtype=getattr(m, out)), x, **tol)
            dcheck(lambda m, t: m.cumsum(t, 1, dtype=getattr(m, out)), x, **tol)
            dcheck(lambda m, t: m.cumprod(t, 0, dtype=getattr(m, out)), x, **tol)
            dcheck(lambda m, t: m.mean(t, dtype=getattr(m, out)), x, **tol)
            dcheck(lambda m, t: m.mean(t, 0, dtype=getattr(m, out)), x, **tol)
    f.raise_if_any()


EMPTY = [
    lambda m, t: m.sum(t), lambda m, t: m.sum(t, 0), lambda m, t: t.sum(1, keepdim=True), lambda m, t: m.prod(t),
    lambda m, t: m.prod(t, 1), lambda m, t: m.mean(t), lambda m, t: m.mean(t, 0), lambda m, t: m.amax(t),
    lambda m, t: m.amax(t, 1), lambda m, t: m.amin(t, 0), lambda m, t: m.max(t), lambda m, t: m.max(t, 0),
    lambda m, t: m.min(t, 1), lambda m, t: m.argmax(t), lambda m, t: m.argmax(t, 1), lambda m, t: m.all(t),
    lambda m, t: m.any(t), lambda m, t: m.all(t, 1), lambda m, t: m.any(t, 0), lambda m, t: m.var(t),
    lambda m, t: m.std(t, 0), lambda m, t: m.norm(t), lambda m, t: m.norm(t, dim=0), lambda m, t: m.logsumexp(t, 0),
    lambda m, t: m.logsumexp(t, (0, 1)), lambda m, t: m.cumsum(t, 0), lambda m, t: m.cumprod(t, 1),
]


def test_empty_reductions(rng):
    """sum of nothing is 0, prod 1, mean nan, logsumexp -inf; max/argmax over an empty dim raise like torch."""
    f = Failures()
    for dtype in ALL_DTYPES:
        for shape in ((0,), (0, 4), (3, 0), (2, 0, 3)):
            x = dpair(shape, dtype, rng=rng)
            for i, fn in enumerate(EMPTY):
                with f.case(f"{dtype} {shape} empty case {i}"):
                    dcheck(fn, x)
    f.raise_if_any()


def test_max_min_arg_with_nans(rng):
    f = Failures()
    for dtype in FLOAT_DTYPES:
        arr = np.asarray(rng.integers(-3, 4, size=(9, 33)), dtype=np.float64)
        arr[rng.random(arr.shape) < 0.1] = np.nan
        arr[4] = np.nan           # an all-nan row
        arr[5] = 1.0              # a row without nan, all ties
        arr[:, 7] = np.nan        # a nan in every row
        arr[6, 3] = np.inf
        arr[7, 2] = -np.inf
        x = dpair_np(arr, dtype)
        for name in ("max", "min", "argmax", "argmin", "amax", "amin", "sum", "mean", "var", "logsumexp", "norm",
                     "cumsum"):
            for dim in (None, 0, 1, -1):
                with f.case(f"{name} {dtype} dim={dim}"):
                    dcheck(lambda m, t, nm, d: RED[nm](m, t, d, False), x, name, dim, **red_tol(name, dtype))
                    dcheck(lambda m, t, nm, d: RED[nm](m, t.t(), d, True), x, name, dim, **red_tol(name, dtype))
        for name in ("max", "min"):
            with f.case(f"{name} {dtype} special values"):
                vals = special_values(dtype)
                p = dpair_vals([vals, vals[::-1], [1.0] * len(vals)], dtype)
                dcheck(lambda m, t, nm: RED[nm](m, t, 1, False), p, name)
                dcheck(lambda m, t, nm: RED[nm](m, t, 0, True), p, name)
    f.raise_if_any()


@pytest.mark.parametrize("fname", ["var", "std"])
def test_var_std_correction(fname, rng):
    f = Failures()
    for dtype in FLOAT_DTYPES + ["int32"]:
        for shape, dim in [((5, 6), 1), ((5, 6), (0, 1)), ((3, 1, 5), 1), ((7,), 0), ((5, 6), None), ((1,), 0),
                           ((0, 3), 0), ((40, 1000), 1), ((1000, 40), 0)]:
            x = dpair(shape, dtype, rng=rng)
            dims = {} if dim is None else {"dim": dim}
            for kw in ({"correction": 0}, {"correction": 1}, {"correction": 2}, {"unbiased": False},
                       {"unbiased": True}, {"correction": 0, "keepdim": True}):
                with f.case(f"{fname} {dtype} {shape} {dims} {kw}"):
                    dcheck(lambda m, t, a, kw: getattr(m, fname)(t, **a, **kw), x, dims, kw, **red_tol("var", dtype))
                    dcheck(lambda m, t, a, kw: getattr(t, fname)(**a, **kw), x, dims, kw, **red_tol("var", dtype))
    with f.case("large offset, small spread (a naive formula loses it in float32)"):
        p = dpair_np((1e4 + rng.standard_normal(100_000)).astype(np.float32))
        dcheck(lambda m, t: getattr(m, fname)(t), p, rtol=1e-3)
    f.raise_if_any()


@pytest.mark.parametrize("p", [2, 1, 3, math.inf, -math.inf, 0, 0.5, 2.0], ids=repr)
def test_norm_p(p, rng):
    f = Failures()
    for dtype in FLOAT_DTYPES + ["int64"]:
        x = dpair((4, 6), dtype, rng=rng)
        big = dpair((129, 1000), dtype, rng=rng)
        tol = red_tol("norm", dtype, 1000)
        for i, fn in enumerate([lambda m, t: m.norm(t, p=p), lambda m, t: t.norm(p), lambda m, t: m.norm(t, p=p, dim=1),
                                lambda m, t: m.norm(t, p, 0, True), lambda m, t: m.norm(t, p=p, dim=(0, 1)),
                                lambda m, t: t.t().norm(p=p, dim=-1, keepdim=True), lambda m, t: m.norm(t[:0], p=p)]):
            with f.case(f"norm p={p} {dtype} case {i}"):
                dcheck(fn, x, **tol)
                dcheck(fn, big, **tol)
    f.raise_if_any()


def test_logsumexp_stability():
    f = Failures()
    for dtype in FLOAT_DTYPES:
        rows = [[1000.0, 1000.0, 999.0], [-1000.0, -1000.0, -1001.0], [-math.inf] * 3, [math.inf, 1.0, 2.0],
                [math.nan, 1.0, 2.0], [0.0, -math.inf, 1.0]]
        if dtype == "float16":
            rows = [[60.0, 60.0, 59.0], [-60.0, -60.0, -61.0]] + rows[2:]
        x = dpair_vals(rows, dtype)
        for i, fn in enumerate([lambda m, t: m.logsumexp(t, 1), lambda m, t: m.logsumexp(t, -1, keepdim=True),
                                lambda m, t: t.logsumexp(0), lambda m, t: m.logsumexp(t, [0, 1])]):
            with f.case(f"logsumexp {dtype} case {i}"):
                dcheck(fn, x, **red_tol("logsumexp", dtype))
    f.raise_if_any()


def test_max_min_binary_form_and_namedtuple(rng):
    a, b = dpair((4, 5), "float32", rng=rng), dpair((5,), "float32", rng=rng)
    dcheck(lambda m, x, y: m.max(x, y), a, b)
    dcheck(lambda m, x, y: m.min(x, y), a, b)
    dcheck(lambda m, x, y: x.max(y), a, b)
    r, e = vt.max(a.v, 1), torch.max(a.t, 1)
    dsame(r.values, e.values)
    dsame(r.indices, e.indices)
    r, e = vt.min(a.v, dim=0, keepdim=True), torch.min(a.t, dim=0, keepdim=True)
    dsame(r.values, e.values)
    dsame(r.indices, e.indices)


@pytest.mark.parametrize("fn", [
    lambda m, t: m.sum(t, 3), lambda m, t: m.mean(t, (0, 5)), lambda m, t: m.amax(t, (0, 0)),
    lambda m, t: m.max(t, 2), lambda m, t: m.argmax(t, -3), lambda m, t: m.cumsum(t, 2), lambda m, t: m.var(t, 4),
    lambda m, t: m.max(t[:0]), lambda m, t: m.argmax(t[:0]), lambda m, t: m.amax(t[:0], 0),
    lambda m, t: m.mean(t.long()), lambda m, t: m.var(t.int()), lambda m, t: m.norm(t.long()),
    lambda m, t: m.argmax(t.bool()), lambda m, t: m.mean(t.bool()),
], ids=["sum_dim", "mean_dim", "amax_repeat", "max_dim", "argmax_dim", "cumsum_dim", "var_dim", "max_empty",
        "argmax_empty", "amax_empty_dim", "mean_int", "var_int", "norm_int", "argmax_bool", "mean_bool"])
def test_reduction_errors_match_torch(fn):
    dcheck(fn, dpair((3, 4), "float32", seed=0))


def test_reduce_then_use_stays_on_device(rng):
    """Results feed further device ops (0-dim results broadcast like any device tensor)."""
    x = dpair((50, 70), "float32", rng=rng)
    dcheck(lambda m, t: t - t.mean(), x, rtol=1e-5, atol=1e-5)
    dcheck(lambda m, t: (t - t.amax(1, keepdim=True)).exp().sum(1), x, rtol=1e-5, atol=1e-5)
    dcheck(lambda m, t: t / t.norm(dim=0), x, rtol=1e-5, atol=1e-6)
    v, t = x.v.sum().item(), x.t.sum().item()
    assert isinstance(v, float) and v == pytest.approx(t, rel=1e-5, abs=1e-4)
    assert x.v.int().sum().item() == x.t.int().sum().item()
