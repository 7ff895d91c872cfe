"""Reductions: sum/mean/prod, max/min (full and with dim), amax/amin, argmax/argmin, var/std, norm, logsumexp,
cumsum/cumprod -- every dtype, int and tuple dims, keepdim, dtype=, empty and 0-dim inputs, large inputs."""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from helpers import (
    ALL_DTYPES,
    BIG_SHAPE,
    FLOAT_DTYPES,
    Pair,
    _noncontig_plan,
    assert_same,
    check_op,
    pair,
    pair_from_numpy,
    pair_from_values,
    special_values,
)
from reduction_cases import ARG, CUM, PROD, RED

SHAPE_DIMS = [
    ((), None), ((), 0), ((), -1), ((7,), None), ((7,), (0,)), ((3, 1, 5), 1), ((3, 1, 5), -1),
    ((3, 1, 5), (0, 2)), ((0, 4), 0), ((0, 4), 1), ((0, 4), None), ((4, 5, 6), 0),
    ((4, 5, 6), (1, 2)), ((4, 5, 6), (-1, 0)), ((33, 17), 1), ((33, 17), None),
]


def red_input(name, shape, dtype, rng, kind=False):
    if name in PROD:
        if dtype in FLOAT_DTYPES:
            return pair(shape, dtype, noncontig=kind, low=0.6, high=1.5, rng=rng)
        return pair(shape, dtype, noncontig=kind, low=0 if dtype == "uint8" else -1, high=2, rng=rng)
    if name in ARG or name in ("max", "min", "amax", "amin"):
        # a narrow range makes ties common: indices must be the first occurrence, like torch
        if dtype in FLOAT_DTYPES:
            bs, view = _noncontig_plan(shape, kind)
            p = pair_from_numpy(rng.integers(-4, 5, size=bs).astype(np.float32) / 2, dtype)
            return Pair(view(p.v), view(p.t))
        return pair(shape, dtype, noncontig=kind, low=0 if dtype == "uint8" else -4, high=5, rng=rng)
    return pair(shape, dtype, noncontig=kind, rng=rng)


ACCUM = {"sum", "sum_meth", "mean", "prod", "cumsum", "cumprod", "var", "std", "norm", "logsumexp"}


def red_tol(name, dtype, n=1):
    if dtype in ("float16", "bfloat16") and name in ACCUM:
        # compare with the correctly rounded (float64) result: torch itself accumulates e.g. prod in 16 bits
        f16 = dtype == "float16"
        return dict(upcast_ref=True, rtol=2e-3 if f16 else 1.6e-2,
                    atol=(2e-3 if f16 else 2e-2) if n < 1000 else (2e-2 if f16 else 5e-2))
    if dtype == "float32":
        return dict(rtol=1e-5, atol=1e-4 if n < 1000 else 5e-3, upcast_ref=name == "norm")
    if dtype == "float64":
        return dict(rtol=1e-10, atol=1e-10 if n < 1000 else 1e-8)
    if dtype in ("float16", "bfloat16") and name in ("var", "std", "norm", "logsumexp", "mean", "sum", "sum_meth",
                                                     "cumsum", "prod", "cumprod"):
        return dict(rtol=2e-3 if dtype == "float16" else 1.6e-2, atol=2e-3 if dtype == "float16" else 2e-2)
    if name in ("mean", "var", "std", "norm", "logsumexp") and dtype not in FLOAT_DTYPES:
        return dict(rtol=1e-5, atol=1e-5)
    return {}


def _reduction_cases():
    for name in RED:
        for shape, dim in SHAPE_DIMS:
            if name in CUM and isinstance(dim, tuple):
                continue  # cumulative ops take one dim
            for keepdim in (False, True):
                if keepdim and (dim is None or name in CUM):
                    continue  # keepdim is irrelevant here
                yield pytest.param(name, shape, dim, keepdim, id=f"{name}-{shape}-dim{dim}-keep{int(keepdim)}")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name,shape,dim,keepdim", list(_reduction_cases()))
def test_reduction(name, shape, dim, keepdim, dtype, rng):
    x = red_input(name, shape, dtype, rng)
    r = check_op(lambda m, t: RED[name](m, t, dim, keepdim), x, **red_tol(name, dtype))
    if r is not None and name in ("max", "min") and isinstance(dim, int):
        v, t = r
        assert_same(v.values, t.values)
        assert_same(v.indices, t.indices)
        vals, idx = v  # unpacks like a tuple
        assert_same(vals, t[0])


@pytest.mark.parametrize("kind", ["transpose", "slice", "expand", "offset"])
@pytest.mark.parametrize("dim", [0, 1, -1, (0, 2), None], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "int32", "float16", "bfloat16", "float64", "bool", "uint8"])
@pytest.mark.parametrize("name", ["sum", "mean", "prod", "amax", "max", "argmin", "var", "norm", "cumsum",
                                  "logsumexp"])
def test_reduction_noncontiguous(name, dtype, dim, kind, rng):
    if name in CUM and isinstance(dim, tuple):
        dim = 2
    x = red_input(name, (6, 5, 4), dtype, rng, kind=kind)
    check_op(lambda m, t: RED[name](m, t, dim, False), x, **red_tol(name, dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "float16", "bfloat16", "int64"])
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "max", "argmax", "argmin", "var", "std", "norm",
                                  "logsumexp", "cumsum", "prod"])
def test_reduction_large(name, dtype, rng):
    """Large inputs exercise the multi-threaded reduction paths (inner and outer dims)."""
    n = BIG_SHAPE[0]
    if name == "prod":
        if dtype in FLOAT_DTYPES:
            x = pair(BIG_SHAPE, dtype, low=0.9999, high=1.0001, rng=rng)
        else:  # +-1 only, so the integer product cannot overflow
            x = pair_from_values(np.where(rng.random(n) < 0.001, -1, 1), dtype)
    elif name in ARG or name in ("max", "amax"):
        x = red_input(name, BIG_SHAPE, dtype, rng)
    else:
        x = pair(BIG_SHAPE, dtype, rng=rng)
    tol = red_tol(name, dtype, n)
    if not (name == "cumsum" and dtype in ("float16", "bfloat16")):  # a running 16-bit sum is too rounding-sensitive
        check_op(lambda m, t: RED[name](m, t, None, False), x, **tol)
    if name == "prod":
        y = pair((317, 331), dtype, low=0.99 if dtype in FLOAT_DTYPES else 1, high=1.01 if dtype in FLOAT_DTYPES
                 else 2, rng=rng)
    else:
        y = red_input(name, (317, 331), dtype, rng)
    for d in (0, 1):
        check_op(lambda m, t: RED[name](m, t, d, False), y, **red_tol(name, dtype, 331))
        check_op(lambda m, t: RED[name](m, t.t(), d, True if name not in CUM else False), y,
                 **red_tol(name, dtype, 331))


# --------------------------------------------------------------------------------------- dtype=


@pytest.mark.parametrize("out", ["float64", "float32", "int64", "float16", "int32"])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_sum_prod_cumsum_dtype_arg(dtype, out, rng):
    x = pair((4, 5), dtype, low=0 if dtype == "uint8" else -2, high=3, rng=rng)
    check_op(lambda m, t: m.sum(t, dtype=getattr(m, out)), x, **red_tol("sum", out))
    check_op(lambda m, t: m.sum(t, 1, dtype=getattr(m, out)), x, **red_tol("sum", out))
    check_op(lambda m, t: t.sum(dim=(0, 1), keepdim=True, dtype=getattr(m, out)), x, **red_tol("sum", out))
    check_op(lambda m, t: m.prod(t, 0, dtype=getattr(m, out)), x, **red_tol("prod", out))
    check_op(lambda m, t: m.cumsum(t, 1, dtype=getattr(m, out)), x, **red_tol("cumsum", out))
    check_op(lambda m, t: m.cumprod(t, 0, dtype=getattr(m, out)), x, **red_tol("cumprod", out))
    check_op(lambda m, t: m.mean(t, dtype=getattr(m, out)), x, **red_tol("mean", out))
    check_op(lambda m, t: m.mean(t, 0, dtype=getattr(m, out)), x, **red_tol("mean", out))


# ------------------------------------------------------------------------------------------ var / std


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + ["int32"])
@pytest.mark.parametrize("shape_dim", [((5, 6), 1), ((5, 6), (0, 1)), ((3, 1, 5), 1), ((7,), 0), ((5, 6), None),
                                       ((1,), 0), ((0, 3), 0)], ids=str)
@pytest.mark.parametrize("fname", ["var", "std"])
def test_var_std_correction(fname, dtype, shape_dim, rng):
    shape, dim = shape_dim
    x = pair(shape, dtype, rng=rng)
    tol = red_tol("var", dtype)
    f = fname
    dims = {} if dim is None else {"dim": dim}
    for kw in ({"correction": 0}, {"correction": 1}, {"correction": 2}, {"unbiased": False}, {"unbiased": True},
               {"correction": 0, "keepdim": True}):
        check_op(lambda m, t: getattr(m, f)(t, **dims, **kw), x, **tol, msg=f"{kw}: ")
        check_op(lambda m, t: getattr(t, f)(**dims, **kw), x, **tol, msg=f"method {kw}: ")
    if dim is not None:
        check_op(lambda m, t: getattr(m, f)(t, dim, False), x, **tol)  # legacy positional `unbiased`
        check_op(lambda m, t: getattr(m, f)(t, dim, True, True), x, **tol)


def test_var_numerically_stable(rng):
    # large offset, small spread: a naive E[x^2]-E[x]^2 formula loses everything in float32
    arr = (1e4 + rng.standard_normal(10_000)).astype(np.float32)
    p = pair_from_numpy(arr)
    check_op(lambda m, t: m.var(t), p, rtol=1e-3)
    check_op(lambda m, t: m.std(t, 0), p, rtol=1e-3)


# ---------------------------------------------------------------------------------------------- norm


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, math.inf, -math.inf, 0, 2.0], ids=repr)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + ["int64"])
def test_norm_p(dtype, p, rng):
    x = pair((4, 6), dtype, rng=rng)
    tol = red_tol("norm", dtype)
    check_op(lambda m, t: m.norm(t, p=p), x, **tol)
    check_op(lambda m, t: t.norm(p), x, **tol)
    check_op(lambda m, t: m.norm(t, p=p, dim=1), x, **tol)
    check_op(lambda m, t: m.norm(t, p, 0, True), x, **tol)
    check_op(lambda m, t: m.norm(t, p=p, dim=(0, 1)), x, **tol)
    check_op(lambda m, t: t.t().norm(p=p, dim=-1, keepdim=True), x, **tol)
    check_op(lambda m, t: m.norm(t[:0], p=p), x, **tol)


# ---------------------------------------------------------------------------------------- logsumexp


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_logsumexp_stability(dtype):
    rows = [[1000.0, 1000.0, 999.0], [-1000.0, -1000.0, -1001.0], [-math.inf, -math.inf, -math.inf],
            [math.inf, 1.0, 2.0], [math.nan, 1.0, 2.0], [0.0, -math.inf, 1.0]]
    if dtype in ("float16",):
        rows = [[60.0, 60.0, 59.0], [-60.0, -60.0, -61.0]] + rows[2:]
    x = pair_from_values(rows, dtype)
    check_op(lambda m, t: m.logsumexp(t, 1), x, **red_tol("logsumexp", dtype))
    check_op(lambda m, t: m.logsumexp(t, -1, keepdim=True), x, **red_tol("logsumexp", dtype))
    check_op(lambda m, t: t.logsumexp(0), x, **red_tol("logsumexp", dtype))


@pytest.mark.parametrize("n", [15, 16, 17, 1000])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_logsumexp_long_rows(n, dtype):
    """float32 rows along the last dim (the CPU's vector path): every length around the vector width, a NaN,
    infinities and huge values inside long rows, a 3-D input, and the gradient through it."""
    rng = np.random.default_rng(n)
    a = (rng.standard_normal((6, n)) * 30).astype(np.float32)
    a[1, n // 2], a[2, :], a[3, 3], a[4, 0] = math.nan, -math.inf, math.inf, 3e38 if dtype == "float32" else 6e4
    x = pair_from_values(a.tolist(), dtype)
    check_op(lambda m, t: m.logsumexp(t, -1), x, **red_tol("logsumexp", dtype))
    check_op(lambda m, t: m.logsumexp(t.reshape(2, 3, n), 2, keepdim=True), x, **red_tol("logsumexp", dtype))
    if dtype != "float32":
        return
    g = vt.from_numpy(a[[0, 5]].copy()).requires_grad_(True)
    tg = torch.from_numpy(a[[0, 5]].copy()).requires_grad_(True)
    vt.logsumexp(g, -1).sum().backward()
    torch.logsumexp(tg, -1).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), tg.grad.numpy(), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------- special values


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var",
                                  "norm", "cumsum", "cumprod", "logsumexp"])
def test_reduction_nan_inf(name, dtype, rng):
    vals = special_values(dtype)
    x = pair_from_values([vals, vals[::-1], [1.0] * len(vals)], dtype)  # (3, n); row 2 has no nan
    for d in (None, 0, 1):
        check_op(lambda m, t: RED[name](m, t, d, False), x, **red_tol(name, dtype), msg=f"dim={d}: ")


def test_max_min_binary_form(rng):
    a = pair((4, 5), "float32", rng=rng)
    b = pair((5,), "float32", rng=rng)
    check_op(lambda m, x, y: m.max(x, y), a, b)
    check_op(lambda m, x, y: m.min(x, y), a, b)
    check_op(lambda m, x, y: x.max(y), a, b)


def test_max_with_dim_namedtuple_fields(rng):
    x = pair((4, 5), "float32", rng=rng)
    r = vt.max(x.v, 1)
    e = torch.max(x.t, 1)
    assert_same(r.values, e.values)
    assert_same(r.indices, e.indices)
    assert_same(r[0], e[0])
    assert len(r) == 2
    r = vt.min(x.v, dim=0, keepdim=True)
    e = torch.min(x.t, dim=0, keepdim=True)
    assert_same(r.values, e.values)
    assert_same(r.indices, e.indices)


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [
    lambda m, t: m.sum(t, 3),
    lambda m, t: m.mean(t, (0, 5)),
    lambda m, t: m.amax(t, (0, 0)),
    lambda m, t: m.max(t, 2),
    lambda m, t: m.argmax(t, -3),
    lambda m, t: m.cumsum(t, 2),
    lambda m, t: m.var(t, 4),
    lambda m, t: m.max(t[:0]),
    lambda m, t: m.argmax(t[:0]),
    lambda m, t: m.amax(t[:0], 0),
    lambda m, t: m.max(t[:0], 0),
    lambda m, t: m.min(t[:0], 1),
    lambda m, t: m.mean(t.long()),
    lambda m, t: m.var(t.int()),
    lambda m, t: m.norm(t.long()),
    lambda m, t: m.argmax(t.bool()),
    lambda m, t: m.mean(t.bool()),
], ids=["sum_dim", "mean_dim", "amax_repeat", "max_dim", "argmax_dim", "cumsum_dim", "var_dim", "max_empty",
        "argmax_empty", "amax_empty_dim", "max_empty_dim", "min_empty_dim1", "mean_int", "var_int", "norm_int",
        "argmax_bool", "mean_bool"])
def test_reduction_errors_match_torch(fn):
    check_op(fn, pair((3, 4), "float32", seed=0))


def test_dim_out_of_range_message():
    x = vt.zeros(3, 4)
    with pytest.raises(IndexError, match=r"\b3\b"):
        x.sum(3)
    with pytest.raises(IndexError, match=r"-3"):
        vt.amax(x, -3)
