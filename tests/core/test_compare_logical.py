"""Comparisons, logical and bitwise ops, where, masked_fill, allclose, equal."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import (
    ALL_DTYPES, BIG_SHAPE, FLOAT_DTYPES, Pair, _noncontig_plan, check_op,
    pair, pair_from_numpy, pair_from_values, special_values,
)

CMP = {
    "eq": lambda m, a, b: m.eq(a, b), "ne": lambda m, a, b: m.ne(a, b), "lt": lambda m, a, b: m.lt(a, b),
    "le": lambda m, a, b: m.le(a, b), "gt": lambda m, a, b: m.gt(a, b), "ge": lambda m, a, b: m.ge(a, b),
    "op_eq": lambda m, a, b: a == b, "op_ne": lambda m, a, b: a != b, "op_lt": lambda m, a, b: a < b,
    "op_le": lambda m, a, b: a <= b, "op_gt": lambda m, a, b: a > b, "op_ge": lambda m, a, b: a >= b,
    "meth_eq": lambda m, a, b: a.eq(b), "meth_lt": lambda m, a, b: a.lt(b),
}
LOGICAL = {
    "logical_and": lambda m, a, b: m.logical_and(a, b), "logical_or": lambda m, a, b: m.logical_or(a, b),
    "logical_xor": lambda m, a, b: m.logical_xor(a, b),
}
BITWISE = {
    "bitwise_and": lambda m, a, b: m.bitwise_and(a, b), "bitwise_or": lambda m, a, b: m.bitwise_or(a, b),
    "bitwise_xor": lambda m, a, b: m.bitwise_xor(a, b),
    "op_and": lambda m, a, b: a & b, "op_or": lambda m, a, b: a | b, "op_xor": lambda m, a, b: a ^ b,
    "meth_bitwise_and": lambda m, a, b: a.bitwise_and(b),
}
BINARY = {**CMP, **LOGICAL, **BITWISE}

SHAPES = [((), ()), ((7,), (7,)), ((3, 1, 5), (4, 5)), ((0, 4), (4,)), ((5, 1), (1, 6)), ((2, 3), ())]


def _small(shape, dtype, rng, kind=False):
    # a narrow value range makes ties (==, <=) common
    if dtype in FLOAT_DTYPES:
        base_shape, view = _noncontig_plan(shape, kind)
        arr = rng.integers(-3, 4, size=base_shape).astype(np.float64) / 2
        p = pair_from_numpy(arr, dtype)
        return Pair(view(p.v), view(p.t))
    return pair(shape, dtype, noncontig=kind, low=0 if dtype == "uint8" else -3, high=4, rng=rng)


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", list(BINARY))
def test_compare_logical_bitwise(op, dtype, shapes, rng):
    check_op(BINARY[op], _small(shapes[0], dtype, rng), _small(shapes[1], dtype, rng))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["eq", "lt", "ge", "logical_and", "logical_xor", "bitwise_or", "op_xor"])
def test_compare_noncontig_and_large(op, dtype, rng):
    check_op(BINARY[op], _small((6, 5), dtype, rng, "transpose"), _small((6, 5), dtype, rng, "slice"))
    check_op(BINARY[op], _small((6, 5), dtype, rng, "expand"), _small((6, 5), dtype, rng, "offset"))
    check_op(BINARY[op], _small(BIG_SHAPE, dtype, rng), _small(BIG_SHAPE, dtype, rng))


@pytest.mark.parametrize("scalar", [1, 0, -2, 0.5, True, False, 300, math.inf, math.nan], ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["eq", "ne", "lt", "ge", "op_gt", "op_le", "op_eq", "bitwise_and", "op_or"])
def test_compare_with_scalar(op, dtype, scalar, rng):
    a = _small((4, 5), dtype, rng)
    check_op(BINARY[op], a, scalar)
    if op.startswith("op_"):
        check_op(lambda m, x, s: BINARY[op](m, s, x), a, scalar)  # reflected


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("op", list(CMP) + list(LOGICAL))
def test_compare_special_values(op, dtype):
    vals = special_values(dtype)
    check_op(BINARY[op], pair_from_values([[v] for v in vals], dtype), pair_from_values([vals], dtype))


def test_compare_mixed_sign_promotion():
    # uint8 200 vs int8 -1: compared in a common type (int16), not by reinterpreting bits
    a = pair_from_values([200, 0, 255, 1], "uint8")
    b = pair_from_values([-1, 0, -1, 1], "int8")
    for op in ("lt", "gt", "eq", "ne", "le", "ge"):
        check_op(BINARY[op], a, b)
    c = pair_from_values([1.5, 2.0, -0.5, 3.0], "float32")
    d = pair_from_values([1, 2, 0, 4], "int64")
    for op in ("lt", "eq", "ge"):
        check_op(BINARY[op], c, d)
    check_op(lambda m, x: x < 1.5, d)
    check_op(lambda m, x: x == 2.0, d)
    check_op(lambda m, x: x > -1, a)


# ------------------------------------------------------------------------------------------ unary


@pytest.mark.parametrize("shape", [(), (7,), (3, 1, 5), (0, 4)], ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["logical_not", "bitwise_not", "invert", "meth_logical_not", "meth_bitwise_not"])
def test_not_ops(op, dtype, shape, rng):
    fn = {
        "logical_not": lambda m, x: m.logical_not(x), "bitwise_not": lambda m, x: m.bitwise_not(x),
        "invert": lambda m, x: ~x, "meth_logical_not": lambda m, x: x.logical_not(),
        "meth_bitwise_not": lambda m, x: x.bitwise_not(),
    }[op]
    check_op(fn, _small(shape, dtype, rng))
    check_op(fn, _small((4, 6), dtype, rng, "transpose"))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_isnan_isinf_isfinite_all_dtypes(dtype, rng):
    x = pair_from_values(special_values(dtype), dtype) if dtype in FLOAT_DTYPES else pair((9,), dtype, rng=rng)
    for name in ("isnan", "isinf", "isfinite"):
        check_op(lambda m, t: getattr(m, name)(t), x)
        check_op(lambda m, t: getattr(t, name)(), x)


# ------------------------------------------------------------------------------------- in-place bitwise


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_inplace_bitwise_and_logical(dtype, rng):
    for op in ("__iand__", "__ior__", "__ixor__", "bitwise_and_", "bitwise_or_", "logical_and_", "logical_not_"):
        def fn(m, x, y):
            if op == "logical_not_":
                x.logical_not_()
                return x
            r = getattr(x, op)(y)
            return r, x
        check_op(fn, _small((4, 5), dtype, rng), _small((5,), dtype, rng), msg=f"{op}: ")


# ---------------------------------------------------------------------------------------------- where


@pytest.mark.parametrize("shapes", [((4, 5), (4, 5), (4, 5)), ((4, 1), (5,), (4, 5)), ((), (3,), (2, 1)),
                                    ((0, 3), (3,), ()), ((3, 1, 5), (4, 1), (1,))], ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_where(dtype, shapes, rng):
    c = pair(shapes[0], "bool", rng=rng)
    a = pair(shapes[1], dtype, rng=rng)
    b = pair(shapes[2], dtype, rng=rng)
    check_op(lambda m, c, a, b: m.where(c, a, b), c, a, b)
    check_op(lambda m, c, a, b: a.where(c, b), c, a, b)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_where_scalars_and_promotion(dtype, rng):
    c = pair((4, 5), "bool", rng=rng)
    a = pair((4, 5), dtype, rng=rng)
    b = pair((5,), "float64" if dtype != "float64" else "int32", rng=rng)
    check_op(lambda m, c, a: m.where(c, a, 0), c, a)
    check_op(lambda m, c, a: m.where(c, 2.5, a), c, a)
    check_op(lambda m, c, a: m.where(c, True, a), c, a)
    check_op(lambda m, c, a, b: m.where(c, a, b), c, a, b)
    check_op(lambda m, c: m.where(c, 1, 0), c)
    check_op(lambda m, c: m.where(c, 1.0, 0), c)


def test_where_noncontig_and_large(rng):
    c = pair((300, 401), "bool", noncontig="transpose", rng=rng)
    a = pair((300, 401), "float32", noncontig="slice", rng=rng)
    b = pair((401,), "float32", rng=rng)
    check_op(lambda m, c, a, b: m.where(c, a, b), c, a, b)


@pytest.mark.parametrize("cdtype", ["uint8", "float32", "int64"])
def test_where_non_bool_condition_like_torch(cdtype, rng):
    check_op(lambda m, c, a: m.where(c, a, -a), pair((5,), cdtype, rng=rng), pair((5,), "float32", rng=rng))


def test_where_single_arg_like_torch():
    # torch.where(cond) == cond.nonzero(as_tuple=True)
    check_op(lambda m, c: m.where(c), pair_from_values([[True, False], [False, True]], "bool"))


# ----------------------------------------------------------------------------------------- masked_fill


@pytest.mark.parametrize("value", [0, -1.5, True, math.inf, "tensor"], ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_masked_fill(dtype, value, rng):
    x = pair((4, 5), dtype, rng=rng)
    mask = pair((5,), "bool", rng=rng)
    if value == "tensor":
        val = Pair(vt.tensor(3), torch.tensor(3))  # 0-dim tensor value
    else:
        val = value
    check_op(lambda m, t, k, v: m.masked_fill(t, k, v), x, mask, val)
    check_op(lambda m, t, k, v: t.masked_fill(k, v), x, mask, val)
    check_op(lambda m, t, k, v: (t.masked_fill_(k, v), t)[1], Pair(x.v.clone(), x.t.clone()), mask, val)


def test_masked_fill_noncontig(rng):
    x = pair((6, 7), "float32", noncontig="transpose", rng=rng)
    mask = pair((6, 1), "bool", rng=rng)
    check_op(lambda m, t, k: t.masked_fill(k, -9.0), x, mask)
    check_op(lambda m, t, k: (t.masked_fill_(k, -9.0), t)[1], x, mask)


def test_masked_fill_errors_like_torch(rng):
    x = pair((4, 5), "float32", rng=rng)
    check_op(lambda m, t: t.masked_fill(m.ones(4, 5), 0.0), x)                       # non-bool mask
    check_op(lambda m, t: t.masked_fill(m.ones(3, dtype=m.bool), 0.0), x)            # bad broadcast
    check_op(lambda m, t: t.masked_fill(m.ones(5, dtype=m.bool), m.ones(2)), x)      # non-0-dim value


# ----------------------------------------------------------------------------------- allclose / equal


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_allclose(dtype, rng):
    a = pair((4, 5), dtype, rng=rng)
    noise = rng.uniform(-1e-6, 1e-6, size=(4, 5))
    b = pair_from_numpy((a.t.double().numpy() + noise), dtype)
    for kw in ({}, {"rtol": 0.0, "atol": 0.0}, {"rtol": 1e-2}, {"atol": 1e-1}):
        check_op(lambda m, x, y: m.allclose(x, y, **kw), a, b)
        check_op(lambda m, x, y: x.allclose(y, **kw), a, b)
    n = pair_from_values([1.0, math.nan, math.inf], dtype)
    check_op(lambda m, x: m.allclose(x, x), n)
    check_op(lambda m, x: m.allclose(x, x, equal_nan=True), n)
    far = pair_from_values([1.0, 2.0, 3.0], dtype)
    near = pair_from_values([1.0, 2.0, 3.5], dtype)
    check_op(lambda m, x, y: m.allclose(x, y), far, near)
    check_op(lambda m, x, y: m.allclose(x, y, atol=0.6), far, near)


def test_allclose_broadcasts_like_torch():
    check_op(lambda m: m.allclose(m.ones(3, 4), m.ones(4)))
    check_op(lambda m: m.allclose(m.ones(3, 4), m.ones(3)))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_equal(dtype, rng):
    a = pair((4, 5), dtype, rng=rng)
    check_op(lambda m, x: m.equal(x, x.clone()), a)
    check_op(lambda m, x: m.equal(x, x.t().contiguous().t()), a)
    check_op(lambda m, x: x.equal(x[:3]), a)                      # different shapes -> False
    check_op(lambda m, x: m.equal(x, x.reshape(5, 4)), a)
    check_op(lambda m, x: m.equal(x[:0], x[:0]), a)
    b = Pair(a.v.clone(), a.t.clone())
    b.v[1, 2] = 1 - b.v[1, 2].item() if dtype != "bool" else not b.v[1, 2].item()
    b.t[1, 2] = 1 - b.t[1, 2].item() if dtype != "bool" else not b.t[1, 2].item()
    check_op(lambda m, x, y: m.equal(x, y), a, b)


def test_equal_nan_is_not_equal():
    n = pair_from_values([1.0, math.nan], "float32")
    check_op(lambda m, x: m.equal(x, x), n)


# --------------------------------------------------------------------------------------- all / any


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_all_any(dtype, rng):
    x = pair((4, 5, 3), dtype, low=0 if dtype != "bool" else None, high=3, rng=rng)
    for fn in (lambda m, t: m.all(t), lambda m, t: m.any(t), lambda m, t: t.all(), lambda m, t: t.any(),
               lambda m, t: m.all(t, dim=1), lambda m, t: m.any(t, dim=-1), lambda m, t: t.all(0, keepdim=True),
               lambda m, t: t.any(dim=2, keepdim=True), lambda m, t: m.all(t, dim=(0, 2)),
               lambda m, t: m.any(t, dim=(1, 2))):
        check_op(fn, x)
    e = pair((0, 3), dtype, rng=rng)
    for fn in (lambda m, t: m.all(t), lambda m, t: m.any(t), lambda m, t: m.all(t, 0), lambda m, t: m.any(t, 1)):
        check_op(fn, e)
    z = pair((), dtype, rng=rng)
    check_op(lambda m, t: m.all(t), z)
    check_op(lambda m, t: m.any(t, 0), z)


def test_all_any_large_and_special(rng):
    big = np.ones(BIG_SHAPE, dtype=np.float32)
    big[rng.integers(0, BIG_SHAPE[0])] = 0
    p = pair_from_numpy(big)
    check_op(lambda m, t: m.all(t), p)
    check_op(lambda m, t: m.any(t == 0), p)
    check_op(lambda m, t: m.any(t > 1), p)
    check_op(lambda m, t: m.all(t), pair_from_values([math.nan, 1.0], "float32"))
