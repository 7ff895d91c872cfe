"""Type promotion, verified against torch.result_type / torch.promote_types and torch's actual results:
tensor-tensor, dimensioned vs 0-dim tensors, tensors vs Python scalars, in-place casting rules."""
import itertools

import pytest
import torch

import vibetensor.torch as vt
from helpers import ALL_DTYPES, Pair, check_op, dtype_name, pair

PAIRS = list(itertools.product(ALL_DTYPES, ALL_DTYPES))
PAIR_IDS = [f"{a}-{b}" for a, b in PAIRS]


def _operand(shape, dtype, rng):
    # non-negative small values: the same numbers are valid in every dtype (no uint8 wraparound surprises)
    return pair(shape, dtype, low=0, high=10, rng=rng)


TT_OPS = {
    "add": lambda m, p, q: m.add(p, q), "mul": lambda m, p, q: p * q, "sub": lambda m, p, q: p - q,
    "div": lambda m, p, q: p / (q + 1), "maximum": lambda m, p, q: m.maximum(p, q),
    "where": lambda m, p, q: m.where(p > 3, p, q), "cat": lambda m, p, q: m.cat([p, q.expand(3, 4)]),
    "eq": lambda m, p, q: p == q, "lt": lambda m, p, q: m.lt(p, q),
}


@pytest.mark.parametrize("op", list(TT_OPS))
@pytest.mark.parametrize("a,b", PAIRS, ids=PAIR_IDS)
def test_tensor_tensor_promotion(a, b, op, rng):
    x, y = _operand((3, 4), a, rng), _operand((4,), b, rng)
    expected = torch.result_type(x.t, y.t)
    r = check_op(TT_OPS[op], x, y)
    if r is not None and op in ("add", "mul", "maximum", "where", "cat"):
        assert dtype_name(r[0].dtype) == dtype_name(expected), f"{op}: vt {r[0].dtype} vs {expected}"


@pytest.mark.parametrize("a,b", PAIRS, ids=PAIR_IDS)
def test_zero_dim_tensor_promotion(a, b, rng):
    """A 0-dim tensor only decides the result dtype if its category (bool < int < float) is higher."""
    x, s = _operand((3,), a, rng), _operand((), b, rng)
    check_op(lambda m, p, q: p + q, x, s)
    check_op(lambda m, p, q: q * p, x, s)
    check_op(lambda m, p, q: m.maximum(p, q), x, s)
    # two 0-dim tensors promote normally
    t = _operand((), a, rng)
    check_op(lambda m, p, q: p + q, t, s)


SCALARS = [2, -1, 300, 2.5, -0.5, True, False, 2**33, 1e20]


SCALAR_OPS = {
    "add": lambda m, p, s: p + s, "rmul": lambda m, p, s: s * p, "mul": lambda m, p, s: m.mul(p, s),
    "div": lambda m, p, s: p / s if s else p / 3, "eq": lambda m, p, s: p == s,
    "where": lambda m, p, s: m.where(p > 4, p, s),
}


@pytest.mark.parametrize("op", list(SCALAR_OPS))
@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_python_scalar_promotion(dtype, scalar, op, rng):
    x = _operand((5,), dtype, rng)
    expected = torch.result_type(x.t, scalar)
    r = check_op(lambda m, p: SCALAR_OPS[op](m, p, scalar), x)
    if r is not None and op in ("add", "rmul", "mul"):
        assert dtype_name(r[0].dtype) == dtype_name(expected)


@pytest.mark.parametrize("a,b", PAIRS, ids=PAIR_IDS)
def test_inplace_cast_rules(a, b, rng):
    """self.op_(other) computes in the promoted type and must be castable back to self's dtype."""
    x, y = _operand((3, 4), a, rng), _operand((4,), b, rng)
    check_op(lambda m, p, q: (p.add_(q), p)[1], x, y)
    check_op(lambda m, p, q: (p.mul_(q), p)[1], Pair(x.v.clone(), x.t.clone()), y)
    check_op(lambda m, p, q: (p.copy_(q.expand(3, 4)), p)[1], Pair(x.v.clone(), x.t.clone()), y)  # copy_ casts freely


@pytest.mark.parametrize("scalar", [2, 2.5, True], ids=repr)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_inplace_with_python_scalar_cast_rules(dtype, scalar, rng):
    x = _operand((4,), dtype, rng)
    check_op(lambda m, p: (p.add_(scalar), p)[1], x)
    check_op(lambda m, p: (p.mul_(scalar), p)[1], Pair(x.v.clone(), x.t.clone()))


# ----------------------------------------------------------------------------------- named examples


@pytest.mark.parametrize("fn,expected", [
    (lambda m: m.ones(2, dtype=m.int32) + 2.5, "float32"),
    (lambda m: m.ones(2, dtype=m.int64) * 1.5, "float32"),
    (lambda m: m.ones(2, dtype=m.uint8) + m.ones(2, dtype=m.int8), "int16"),
    (lambda m: m.ones(2, dtype=m.float16) + m.ones(2, dtype=m.bfloat16), "float32"),
    (lambda m: m.ones(2, dtype=m.bool) + m.ones(2, dtype=m.bool), "bool"),
    (lambda m: m.ones(2, dtype=m.bool) + 1, "int64"),
    (lambda m: m.ones(2, dtype=m.bool) + 1.5, "float32"),
    (lambda m: m.ones(2, dtype=m.uint8) + 300, "uint8"),
    (lambda m: m.ones(2, dtype=m.int8) + True, "int8"),
    (lambda m: m.ones(2, dtype=m.float16) + 2.5, "float16"),
    (lambda m: m.ones(2, dtype=m.bfloat16) * 3, "bfloat16"),
    (lambda m: m.ones(2, dtype=m.int32) / m.ones(2, dtype=m.int32), "float32"),
    (lambda m: m.ones(2, dtype=m.int32) // m.ones(2, dtype=m.int32), "int32"),
    (lambda m: m.ones(2, dtype=m.int32) + m.tensor(1.0, dtype=m.float64), "float64"),
    (lambda m: m.ones(2, dtype=m.float16) + m.tensor(1.0, dtype=m.float64), "float16"),
    (lambda m: m.ones(2, dtype=m.int16) + m.tensor(1, dtype=m.int64), "int16"),
    (lambda m: m.ones(2, dtype=m.int32) + m.ones(2, dtype=m.float16), "float16"),
    (lambda m: m.ones(2, dtype=m.int64) + m.ones(2, dtype=m.bfloat16), "bfloat16"),
    (lambda m: m.ones(2, dtype=m.uint8) + m.ones(2, dtype=m.int16), "int16"),
    (lambda m: m.ones(2, dtype=m.uint8) + m.ones(2, dtype=m.int64), "int64"),
    (lambda m: m.ones(2, dtype=m.float32) + m.ones(2, dtype=m.float64), "float64"),
    (lambda m: m.ones(2, dtype=m.int32).sqrt(), "float32"),
    (lambda m: m.ones(2, dtype=m.bool).sum(), "int64"),
    (lambda m: m.ones(2, dtype=m.int8).sum(), "int64"),
    (lambda m: m.ones(2, dtype=m.int8).cumsum(0), "int64"),
    (lambda m: m.ones(2, dtype=m.int8).prod(), "int64"),
    (lambda m: m.ones(2, dtype=m.float16).sum(), "float16"),
    (lambda m: m.ones(2, dtype=m.int32).abs(), "int32"),
    (lambda m: m.ones(2, dtype=m.int32).floor(), "int32"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_named_promotions(fn, expected):
    r = check_op(lambda m: fn(m))
    assert dtype_name(r[0].dtype) == expected


# ------------------------------------------------------------------------------- promotion helpers


@pytest.mark.skipif(not hasattr(vt, "promote_types"), reason="vt.promote_types not exposed")
@pytest.mark.parametrize("a,b", PAIRS, ids=PAIR_IDS)
def test_promote_types(a, b):
    assert dtype_name(vt.promote_types(getattr(vt, a), getattr(vt, b))) == dtype_name(
        torch.promote_types(getattr(torch, a), getattr(torch, b)))


@pytest.mark.skipif(not hasattr(vt, "can_cast"), reason="vt.can_cast not exposed")
@pytest.mark.parametrize("a,b", PAIRS, ids=PAIR_IDS)
def test_can_cast(a, b):
    assert vt.can_cast(getattr(vt, a), getattr(vt, b)) == torch.can_cast(getattr(torch, a), getattr(torch, b))


@pytest.mark.skipif(not hasattr(vt, "result_type"), reason="vt.result_type not exposed")
@pytest.mark.parametrize("other", [2, 2.5, True, "0dim_f64", "0dim_i64", "1d_f16"])
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_result_type(dtype, other, rng):
    x = _operand((3,), dtype, rng)
    o = {"0dim_f64": lambda m: m.tensor(1.0, dtype=m.float64), "0dim_i64": lambda m: m.tensor(1),
         "1d_f16": lambda m: m.ones(3, dtype=m.float16)}
    if isinstance(other, str):
        got = vt.result_type(x.v, o[other](vt))
        want = torch.result_type(x.t, o[other](torch))
    else:
        got = vt.result_type(x.v, other)
        want = torch.result_type(x.t, other)
    assert dtype_name(got) == dtype_name(want)
