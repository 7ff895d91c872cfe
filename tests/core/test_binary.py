"""Binary arithmetic: functions, operators, reflected scalars, alpha, rounding modes, in-place variants.

Every op is run for every dtype; where torch raises (e.g. `-` on bool), vt must raise the same exception kind.
"""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import (
    ALL_DTYPES, BIG_SHAPE, FLOAT_DTYPES, INT_DTYPES, assert_same, check_op, pair, pair_from_values,
    special_values,
)

# name -> (fn(m, a, b), divisor-like second operand?, pow-like ranges?)
OPS = {
    "add": (lambda m, a, b: m.add(a, b), False),
    "sub": (lambda m, a, b: m.sub(a, b), False),
    "mul": (lambda m, a, b: m.mul(a, b), False),
    "div": (lambda m, a, b: m.div(a, b), True),
    "div_trunc": (lambda m, a, b: m.div(a, b, rounding_mode="trunc"), True),
    "div_floor": (lambda m, a, b: m.div(a, b, rounding_mode="floor"), True),
    "floor_divide": (lambda m, a, b: m.floor_divide(a, b), True),
    "remainder": (lambda m, a, b: m.remainder(a, b), True),
    "fmod": (lambda m, a, b: m.fmod(a, b), True),
    "pow": (lambda m, a, b: m.pow(a, b), False),
    "maximum": (lambda m, a, b: m.maximum(a, b), False),
    "minimum": (lambda m, a, b: m.minimum(a, b), False),
    "atan2": (lambda m, a, b: m.atan2(a, b), False),
    "op_add": (lambda m, a, b: a + b, False),
    "op_sub": (lambda m, a, b: a - b, False),
    "op_mul": (lambda m, a, b: a * b, False),
    "op_truediv": (lambda m, a, b: a / b, True),
    "op_floordiv": (lambda m, a, b: a // b, True),
    "op_mod": (lambda m, a, b: a % b, True),
    "op_pow": (lambda m, a, b: a ** b, False),
    "meth_add": (lambda m, a, b: a.add(b), False),
    "meth_sub": (lambda m, a, b: a.sub(b), False),
    "meth_mul": (lambda m, a, b: a.mul(b), False),
    "meth_div": (lambda m, a, b: a.div(b), True),
    "meth_pow": (lambda m, a, b: a.pow(b), False),
}
DIVISION = {k for k, (_, d) in OPS.items() if d}
POW = {"pow", "op_pow", "meth_pow"}


def operands(op, shape_a, shape_b, dtype, rng, kind_a=False, kind_b=False):
    """Inputs safe for `op`: integer divisors are non-zero, integer powers stay small and non-negative."""
    lo, hi = (-10, 11) if dtype in INT_DTYPES else (None, None)
    if op in POW:
        if dtype in INT_DTYPES:
            a = pair(shape_a, dtype, noncontig=kind_a, low=-3, high=4, rng=rng)
            b = pair(shape_b, dtype, noncontig=kind_b, low=0, high=4, rng=rng)
            return a, b
        a = pair(shape_a, dtype, noncontig=kind_a, low=0.05, high=3.0, rng=rng)
        b = pair(shape_b, dtype, noncontig=kind_b, low=-2.5, high=2.5, rng=rng)
        return a, b
    a = pair(shape_a, dtype, noncontig=kind_a, low=lo, high=hi, rng=rng)
    b = pair(shape_b, dtype, noncontig=kind_b, low=lo, high=hi, nonzero=op in DIVISION, rng=rng)
    return a, b


ROUNDING = {"div_trunc", "div_floor", "floor_divide", "op_floordiv"}


def rounding_tol(op, dtype):
    """torch rounds a/b to float16/bfloat16 *before* truncating/flooring (a 16-bit quotient of -8.99 becomes -9.0,
    then trunc gives -9); computing trunc in float32 and rounding after gives -8. Allow that one-unit ambiguity."""
    if op in ROUNDING and dtype in ("float16", "bfloat16"):
        return {"atol": 1.0}
    return {}


BCAST_SHAPES = [
    ((), ()), ((7,), (7,)), ((3, 1, 5), (4, 5)), ((0, 4), (4,)), ((), (3,)), ((2, 3), ()), ((5, 1), (1, 6)),
    ((0, 4), (1, 4)), ((1,), (0,)), ((2, 1, 3), (2, 4, 1)), ((33, 17), (33, 17)),
]


@pytest.mark.parametrize("shapes", BCAST_SHAPES, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", list(OPS))
def test_binary_broadcast(op, dtype, shapes, rng):
    a, b = operands(op, shapes[0], shapes[1], dtype, rng)
    check_op(OPS[op][0], a, b, **rounding_tol(op, dtype))


@pytest.mark.parametrize("kinds", [("transpose", False), (False, "slice"), ("expand", "transpose"),
                                   ("offset", "expand"), ("slice", "slice")], ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "floor_divide", "remainder", "pow", "maximum",
                                "atan2", "div_trunc", "fmod"])
def test_binary_noncontiguous(op, dtype, kinds, rng):
    a, b = operands(op, (6, 5), (6, 5), dtype, rng, kind_a=kinds[0], kind_b=kinds[1])
    check_op(OPS[op][0], a, b, **rounding_tol(op, dtype))


@pytest.mark.parametrize("dtype", ["float32", "int32", "float16", "bfloat16", "float64", "int64"])
@pytest.mark.parametrize("op", ["add", "mul", "div", "sub", "remainder", "pow", "maximum", "floor_divide"])
def test_binary_large(op, dtype, rng):
    """~100k elements: exercises the multi-threaded path, also with a broadcast and a transposed operand."""
    a, b = operands(op, BIG_SHAPE, BIG_SHAPE, dtype, rng)
    check_op(OPS[op][0], a, b, **rounding_tol(op, dtype))
    a, b = operands(op, (317, 331), (331,), dtype, rng, kind_a="transpose")
    check_op(OPS[op][0], a, b, **rounding_tol(op, dtype))


# ------------------------------------------------------------------------------------- special values


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "div_trunc", "div_floor", "floor_divide",
                                "remainder", "fmod", "pow", "maximum", "minimum", "atan2"])
def test_binary_special_values(op, dtype):
    vals = special_values(dtype)
    a = pair_from_values([[v] for v in vals], dtype)  # (n, 1)
    b = pair_from_values([vals], dtype)              # (1, n)
    check_op(OPS[op][0], a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_signed_zero_results(dtype):
    z = pair_from_values([0.0, -0.0, 1.0, -1.0], dtype)
    # (maximum/minimum of +0 and -0 is implementation-defined in torch, so it is not checked here)
    for fn in (lambda m, a: m.div(a, -math.inf), lambda m, a: a * -1, lambda m, a: m.div(-a, 2, rounding_mode="trunc"),
               lambda m, a: m.remainder(a, -3.0), lambda m, a: m.fmod(-a, 1.0)):
        r = check_op(fn, z)
        np.testing.assert_array_equal(np.signbit(r[0].numpy()), np.signbit(r[1].numpy()))


# ----------------------------------------------------------------------------------- Python scalars

SCALARS = [3, -2, 2.5, -0.75, True, 0.0]
SCALAR_OPS = {
    "add": lambda m, a, s: a + s, "radd": lambda m, a, s: s + a,
    "sub": lambda m, a, s: a - s, "rsub": lambda m, a, s: s - a,
    "mul": lambda m, a, s: a * s, "rmul": lambda m, a, s: s * a,
    "truediv": lambda m, a, s: a / s, "rtruediv": lambda m, a, s: s / a,
    "floordiv": lambda m, a, s: a // s, "rfloordiv": lambda m, a, s: s // a,
    "mod": lambda m, a, s: a % s, "rmod": lambda m, a, s: s % a,
    "pow": lambda m, a, s: a ** s, "rpow": lambda m, a, s: s ** a,
    "fn_add": lambda m, a, s: m.add(a, s), "fn_sub": lambda m, a, s: m.sub(a, s),
    "fn_mul": lambda m, a, s: m.mul(a, s), "fn_div": lambda m, a, s: m.div(a, s),
    "fn_pow": lambda m, a, s: m.pow(a, s), "fn_remainder": lambda m, a, s: m.remainder(a, s),
    "fn_fmod": lambda m, a, s: m.fmod(a, s), "fn_floor_divide": lambda m, a, s: m.floor_divide(a, s),
    "fn_div_floor": lambda m, a, s: m.div(a, s, rounding_mode="floor"),
    "fn_pow_scalar_base": lambda m, a, s: m.pow(s, a),
}
SCALAR_DIV = {"truediv", "floordiv", "mod", "fn_div", "fn_remainder", "fn_fmod", "fn_floor_divide", "fn_div_floor"}
SCALAR_RDIV = {"rtruediv", "rfloordiv", "rmod"}
SCALAR_POW = {"pow", "fn_pow"}
SCALAR_RPOW = {"rpow", "fn_pow_scalar_base"}


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("op", list(SCALAR_OPS))
def test_binary_python_scalar(op, dtype, scalar, rng):
    low, high = ((-3, 4) if dtype in INT_DTYPES else (0.1, 3.0)) if op in SCALAR_POW | SCALAR_RPOW else (None, None)
    if op in SCALAR_RPOW and dtype in INT_DTYPES:
        low = 0
    if dtype == "uint8" and low is not None:
        low = max(low, 0)
    a = pair((4, 5), dtype, low=low, high=high, nonzero=op in SCALAR_RDIV, rng=rng)
    check_op(SCALAR_OPS[op], a, scalar)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_zero_dim_tensor_operand(dtype, rng):
    a = pair((3, 4), dtype, rng=rng)
    s = pair((), dtype, rng=rng, nonzero=True)
    for name in ("add", "sub", "mul", "div", "maximum"):
        check_op(OPS[name][0], a, s)
        check_op(OPS[name][0], s, a)


def test_unary_neg_and_pos_operators(rng):
    for dtype in ALL_DTYPES:
        a = pair((3, 4), dtype, rng=rng)
        check_op(lambda m, x: -x, a)
        check_op(lambda m, x: m.neg(x), a)
        check_op(lambda m, x: +x, a)
        check_op(lambda m, x: abs(x), a)


# ------------------------------------------------------------------------------------- alpha / modes


@pytest.mark.parametrize("alpha", [2, -1, 0.5, True, 0])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_add_sub_alpha(dtype, alpha, rng):
    a = pair((3, 1, 5), dtype, rng=rng, low=-10 if dtype in INT_DTYPES else None, high=11)
    b = pair((4, 5), dtype, rng=rng, low=-10 if dtype in INT_DTYPES else None, high=11)
    check_op(lambda m, x, y: m.add(x, y, alpha=alpha), a, b)
    check_op(lambda m, x, y: m.sub(x, y, alpha=alpha), a, b)
    check_op(lambda m, x, y: x.add(y, alpha=alpha), a, b)
    check_op(lambda m, x, y: x.add(3, alpha=alpha), a, b)


@pytest.mark.parametrize("mode", [None, "trunc", "floor"])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_div_rounding_modes_signs(dtype, mode):
    # all sign combinations, exact and inexact quotients
    if dtype == "bool":
        vals_a, vals_b = [[True], [False]], [[True]]
    elif dtype == "uint8":
        vals_a, vals_b = [[0], [7], [9], [255]], [[1, 2, 4, 255]]
    else:
        vals_a, vals_b = [[-7], [-6], [0], [6], [7], [9]], [[-4, -3, -2, -1, 1, 2, 3, 4]]
    a = pair_from_values(vals_a, dtype)
    b = pair_from_values(vals_b, dtype)
    check_op(lambda m, x, y: m.div(x, y, rounding_mode=mode), a, b)
    check_op(lambda m, x, y: x.div(y, rounding_mode=mode), a, b)
    check_op(lambda m, x, y: m.remainder(x, y), a, b)
    check_op(lambda m, x, y: m.fmod(x, y), a, b)
    check_op(lambda m, x, y: m.floor_divide(x, y), a, b)


def test_div_bad_rounding_mode_raises_like_torch():
    check_op(lambda m: m.div(m.ones(2), m.ones(2), rounding_mode="round"))


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_int_pow_negative_exponent(dtype):
    if dtype == "uint8":
        pytest.skip("no negative exponents in uint8")
    a = pair_from_values([[-2], [-1], [1], [2], [3]], dtype)
    b = pair_from_values([[-3, -2, -1, 0, 1, 2]], dtype)
    check_op(lambda m, x, y: m.pow(x, y), a, b)
    check_op(lambda m, x: x ** -1, a)  # torch: "Integers to negative integer powers are not allowed."
    check_op(lambda m, x: x ** 2, a)
    check_op(lambda m, x: x ** 0, a)
    check_op(lambda m, x: 2 ** x.abs(), a)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_wraparound_matches_torch(dtype):
    info = np.iinfo(dtype)
    a = pair_from_values([info.max, info.min, info.max - 1, 0], dtype)
    b = pair_from_values([1, 1, 3, 1], dtype)
    check_op(lambda m, x, y: x + y, a, b)
    check_op(lambda m, x, y: x - y, a, b)
    check_op(lambda m, x: x * 2, a)


# -------------------------------------------------------------------------------------------- in-place

INPLACE = {
    "add_": lambda m, a, b: a.add_(b),
    "sub_": lambda m, a, b: a.sub_(b),
    "mul_": lambda m, a, b: a.mul_(b),
    "div_": lambda m, a, b: a.div_(b),
    "div_floor_": lambda m, a, b: a.div_(b, rounding_mode="floor"),
    "pow_": lambda m, a, b: a.pow_(b),
    "remainder_": lambda m, a, b: a.remainder_(b),
    "fmod_": lambda m, a, b: a.fmod_(b),
    "floor_divide_": lambda m, a, b: a.floor_divide_(b),
    "iadd": None, "isub": None, "imul": None, "itruediv": None, "ifloordiv": None, "imod": None, "ipow": None,
}
_IOPS = {"iadd": "__iadd__", "isub": "__isub__", "imul": "__imul__", "itruediv": "__itruediv__",
         "ifloordiv": "__ifloordiv__", "imod": "__imod__", "ipow": "__ipow__"}


def _inplace_fn(name):
    if INPLACE[name] is not None:
        f = INPLACE[name]
        return lambda m, a, b: (f(m, a, b), a)[1]

    def f(m, a, b):
        x = a
        if name == "iadd":
            x += b
        elif name == "isub":
            x -= b
        elif name == "imul":
            x *= b
        elif name == "itruediv":
            x /= b
        elif name == "ifloordiv":
            x //= b
        elif name == "imod":
            x %= b
        elif name == "ipow":
            x **= b
        return x, a  # the Python in-place operator must keep (and mutate) the same tensor
    return f


@pytest.mark.parametrize("b_shape", [(4, 5), (5,), (), (1, 5)], ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace(name, dtype, b_shape, rng):
    div = any(k in name for k in ("div", "mod", "remainder"))
    pw = "pow" in name
    op = "pow" if pw else ("div" if div else "add")
    a, b = operands(op, (4, 5), b_shape, dtype, rng)
    check_op(_inplace_fn(name), a, b)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("kind", ["transpose", "slice", "offset"])
def test_inplace_noncontiguous_self(dtype, kind, rng):
    a, b = operands("add", (4, 6), (4, 6), dtype, rng, kind_a=kind)
    check_op(_inplace_fn("add_"), a, b)
    a, b = operands("add", (4, 6), (6,), dtype, rng, kind_a=kind, kind_b="slice")
    check_op(_inplace_fn("mul_"), a, b)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("scalar", [2, 1.5, True])
def test_inplace_with_scalar(dtype, scalar, rng):
    a = pair((3, 4), dtype, rng=rng)
    for name in ("add_", "sub_", "mul_", "div_"):
        check_op(lambda m, x: (INPLACE[name](m, x, scalar), x)[1], a.__class__(a.v.clone(), a.t.clone()),
                 msg=f"{name}({scalar!r}): ")


def test_inplace_result_is_self():
    x = vt.ones(3)
    y = x
    y += 1
    assert y is x
    y *= vt.full((3,), 2.0)
    assert y is x
    assert_same(x, torch.full((3,), 4.0))


def test_inplace_visible_through_views(rng):
    p = pair((4, 6), "float32", rng=rng)
    for m, x in ((vt, p.v), (torch, p.t)):
        x[1:3].add_(100)
        x.t()[2].mul_(-1)
        x[:, ::2].sub_(m.ones(3))
    assert_same(p.v, p.t)


@pytest.mark.parametrize("fn", [
    lambda m, a, b: a.add_(b),       # result shape (4, 5) != self shape (1, 5)
    lambda m, a, b: a.mul_(b),
], ids=["add_", "mul_"])
def test_inplace_broadcast_self_raises_like_torch(fn, rng):
    a = pair((1, 5), "float32", rng=rng)
    b = pair((4, 5), "float32", rng=rng)
    check_op(fn, a, b)


def test_inplace_partial_overlap_raises_like_torch():
    check_op(lambda m, x: x[1:].add_(x[:-1]), pair((10,), "float32", seed=0))
    # exact aliasing is fine
    check_op(lambda m, x: (x.add_(x), x)[1], pair((10,), "float32", seed=0))


def test_inplace_on_expanded_raises_like_torch():
    check_op(lambda m, x: x.expand(3, 4).add_(1), pair((1, 4), "float32", seed=0))


# --------------------------------------------------------------------------------------- error cases


@pytest.mark.parametrize("op", ["add", "mul", "maximum", "op_sub", "atan2", "remainder"])
def test_broadcast_mismatch_raises_like_torch(op):
    a = pair((2, 3), "float32", seed=0)
    b = pair((4, 3), "float32", seed=1)
    check_op(OPS[op][0], a, b)


def test_binary_with_non_tensor_raises_like_torch():
    a = pair((3,), "float32", seed=0)
    check_op(lambda m, x: m.add(x, "a"), a)
    check_op(lambda m, x: x + None, a)
    check_op(lambda m, x: x * [1, 2, 3], a)
