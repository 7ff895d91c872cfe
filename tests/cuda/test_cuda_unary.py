"""CUDA unary and ternary elementwise ops against torch on the GPU: math functions, rounding, predicates,
bitwise/logical not, activations (gelu both modes, softplus, leaky_relu, elu, hardtanh, silu, mish, logsigmoid),
clamp, where, masked_fill and the in-place variants, for every dtype; 0-dim, empty, odd-sized (vector main loop
+ tail), misaligned (x[1:]) and non-contiguous inputs, special values (inf, nan, -0.0, huge, tiny).

GPU run: PYTHONPATH=python python -m pytest tests/cuda -q -p no:cacheprovider
"""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV, Failures, clone, dcheck, dpair, dpair_vals
from helpers import ALL_DTYPES, FLOAT_DTYPES, INT_DTYPES, Pair, special_values

pytestmark = CUDA_MARKS

# name -> (fn(m, x), (low, high) float input domain or None)
UNARY = {
    "neg": (lambda m, x: m.neg(x), None), "abs": (lambda m, x: m.abs(x), None),
    "exp": (lambda m, x: m.exp(x), (-10, 10)), "exp2": (lambda m, x: m.exp2(x), (-14, 14)),
    "expm1": (lambda m, x: m.expm1(x), (-5, 5)), "log": (lambda m, x: m.log(x), (0.01, 20)),
    "log2": (lambda m, x: m.log2(x), (0.01, 20)), "log10": (lambda m, x: m.log10(x), (0.01, 20)),
    "log1p": (lambda m, x: m.log1p(x), (-0.9, 10)), "sqrt": (lambda m, x: m.sqrt(x), (0, 20)),
    "rsqrt": (lambda m, x: m.rsqrt(x), (0.05, 20)), "sin": (lambda m, x: m.sin(x), (-6, 6)),
    "cos": (lambda m, x: m.cos(x), (-6, 6)), "tan": (lambda m, x: m.tan(x), (-1.3, 1.3)),
    "asin": (lambda m, x: m.asin(x), (-0.99, 0.99)), "acos": (lambda m, x: m.acos(x), (-0.99, 0.99)),
    "atan": (lambda m, x: m.atan(x), (-10, 10)), "sinh": (lambda m, x: m.sinh(x), (-5, 5)),
    "cosh": (lambda m, x: m.cosh(x), (-5, 5)), "tanh": (lambda m, x: m.tanh(x), (-5, 5)),
    "erf": (lambda m, x: m.erf(x), (-3, 3)), "erfc": (lambda m, x: m.erfc(x), (-3, 3)),
    "floor": (lambda m, x: m.floor(x), (-10, 10)), "ceil": (lambda m, x: m.ceil(x), (-10, 10)),
    "round": (lambda m, x: m.round(x), (-10, 10)), "trunc": (lambda m, x: m.trunc(x), (-10, 10)),
    "frac": (lambda m, x: m.frac(x), (-10, 10)), "sign": (lambda m, x: m.sign(x), None),
    "reciprocal": (lambda m, x: m.reciprocal(x), None), "square": (lambda m, x: m.square(x), None),
    "sigmoid": (lambda m, x: m.sigmoid(x), (-10, 10)), "relu": (lambda m, x: m.relu(x), None),
    "isnan": (lambda m, x: m.isnan(x), None), "isinf": (lambda m, x: m.isinf(x), None),
    "isfinite": (lambda m, x: x.isfinite(), None), "logical_not": (lambda m, x: m.logical_not(x), None),
    "bitwise_not": (lambda m, x: m.bitwise_not(x), None), "invert": (lambda m, x: ~x, None),
    "op_neg": (lambda m, x: -x, None), "op_abs": (lambda m, x: abs(x), None),
    "round_decimals": (lambda m, x: m.round(x, decimals=2), (-100, 100)),
    "meth_exp": (lambda m, x: x.exp(), (-5, 5)), "meth_sigmoid": (lambda m, x: x.sigmoid(), None),
}
TRANSCENDENTAL = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan",
                  "asin", "acos", "atan", "sinh", "cosh", "tanh", "erf", "erfc", "sigmoid", "reciprocal", "meth_exp",
                  "meth_sigmoid", "round_decimals"}
ACT = {
    "F.relu": lambda m, x: m.nn.functional.relu(x),
    "F.gelu": lambda m, x: m.nn.functional.gelu(x),
    "F.gelu_tanh": lambda m, x: m.nn.functional.gelu(x, approximate="tanh"),
    "F.silu": lambda m, x: m.nn.functional.silu(x),
    "F.mish": lambda m, x: m.nn.functional.mish(x),
    "F.logsigmoid": lambda m, x: m.nn.functional.logsigmoid(x),
    "F.softplus": lambda m, x: m.nn.functional.softplus(x),
    "F.softplus_beta": lambda m, x: m.nn.functional.softplus(x, beta=2.0, threshold=5.0),
    "F.softplus_beta_half": lambda m, x: m.nn.functional.softplus(x, beta=0.5, threshold=1.0),
    "F.leaky_relu": lambda m, x: m.nn.functional.leaky_relu(x),
    "F.leaky_relu_slope": lambda m, x: m.nn.functional.leaky_relu(x, 0.2),
    "F.elu": lambda m, x: m.nn.functional.elu(x),
    "F.elu_alpha": lambda m, x: m.nn.functional.elu(x, alpha=0.5),
    "F.hardtanh": lambda m, x: m.nn.functional.hardtanh(x),
    "F.hardtanh_range": lambda m, x: m.nn.functional.hardtanh(x, min_val=-0.5, max_val=2.0),
    "F.sigmoid": lambda m, x: m.nn.functional.sigmoid(x),
    "F.tanh": lambda m, x: m.nn.functional.tanh(x),
}
EXACT_ACT = {"F.relu", "F.leaky_relu", "F.leaky_relu_slope", "F.hardtanh", "F.hardtanh_range"}
ALL_UNARY = {**{k: v[0] for k, v in UNARY.items()}, **ACT}


def uinput(name, dtype, shape, rng, kind=False):
    dom = UNARY[name][1] if name in UNARY else (-8, 8)
    if dtype in FLOAT_DTYPES:
        lo, hi = dom if dom else (-8, 8)
        return dpair(shape, dtype, noncontig=kind, low=lo, high=hi, rng=rng)
    if dtype in INT_DTYPES and dom is not None and dom[0] >= 0:
        return dpair(shape, dtype, noncontig=kind, low=0 if dom[0] == 0 else 1, high=max(2, int(dom[1])), rng=rng)
    if dtype in INT_DTYPES and name in ("exp", "meth_exp", "exp2", "sinh", "cosh", "expm1"):
        return dpair(shape, dtype, noncontig=kind, low=-5 if dtype != "uint8" else 0, high=6, rng=rng)
    return dpair(shape, dtype, noncontig=kind, low=0 if dtype == "uint8" else None, rng=rng)


def utol(name, dtype):
    """Transcendentals may differ from torch's CUDA math by a few ulp (fast intrinsics, other polynomials): float32
    (and integer inputs, computed in float32) get rtol 1e-5; a result matching float64 math is accepted too."""
    if name in EXACT_ACT or not (name in TRANSCENDENTAL or name.startswith("F.")):
        return {}
    if dtype == "float64":
        return {"rtol": 1e-10, "atol": 1e-12}
    if dtype in ("float16", "bfloat16"):
        return {"upcast_ref": True}
    return {"rtol": 1e-5, "atol": 1e-6, "upcast_ref": True}


SHAPES = [(), (7,), (3, 1, 5), (0, 4), (33, 17)]


@pytest.mark.parametrize("name", list(ALL_UNARY))
def test_unary_every_dtype(name, rng):
    f = Failures()
    for dtype in ("float32", "float64") if name == "round_decimals" else ALL_DTYPES:  # (as the CPU suite)
        for shape in SHAPES:
            with f.case(f"{name} {dtype} {shape}"):
                dcheck(ALL_UNARY[name], uinput(name, dtype, shape, rng), **utol(name, dtype))
        for kind in ("transpose", "slice", "expand", "offset"):
            with f.case(f"{name} {dtype} {kind}"):
                dcheck(ALL_UNARY[name], uinput(name, dtype, (6, 5), rng, kind), **utol(name, dtype))
    f.raise_if_any()


@pytest.mark.parametrize("name", ["neg", "abs", "exp", "log", "sqrt", "sin", "tanh", "round", "sign", "sigmoid",
                                  "isnan", "bitwise_not", "logical_not", "F.gelu", "F.silu", "F.softplus"])
def test_unary_odd_sizes_and_misaligned(name, rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        for n in (1, 3, 17, 1023, 4099):
            for kind in (False, "offset", "slice"):
                with f.case(f"{name} {dtype} n={n} {kind}"):
                    dcheck(ALL_UNARY[name], uinput(name, dtype, (n,), rng, kind), **utol(name, dtype))
        with f.case(f"{name} {dtype} x[3:] and rows from column 1"):
            dcheck(lambda m, x: ALL_UNARY[name](m, x[3:]), uinput(name, dtype, (4102,), rng), **utol(name, dtype))
            dcheck(lambda m, x: ALL_UNARY[name](m, x[:, 1:]), uinput(name, dtype, (9, 130), rng), **utol(name, dtype))
    f.raise_if_any()


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_unary_large(dtype, rng):
    f = Failures()
    for name in ("exp", "sin", "sqrt", "sigmoid", "tanh", "log", "erf", "F.gelu_tanh", "F.elu"):
        with f.case(f"{name} {dtype}"):
            dcheck(ALL_UNARY[name], uinput(name, dtype, (1 << 20 | 5,), rng), **utol(name, dtype))
            dcheck(ALL_UNARY[name], uinput(name, dtype, (331, 317), rng, "transpose"), **utol(name, dtype))
    f.raise_if_any()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_unary_special_values(dtype):
    """inf, -inf, nan, +-0, huge and tiny values (float32/bfloat16 1e30, float64 1e300 and a denormal)."""
    x = dpair_vals(special_values(dtype), dtype)
    edges = dpair_vals([-30.0, -20.0, -5.0, 0.999, 1.0, 1.001, 2.4, 2.5, 2.6, 5.0, 19.9, 20.0, 20.1, 30.0], dtype)
    f = Failures()
    for name, fn in ALL_UNARY.items():
        if name.startswith("meth_"):
            continue
        tol = {**utol(name, dtype), "upcast_ref": name not in ("F.relu",)}
        with f.case(f"{name} {dtype} special values"):
            dcheck(fn, x, **tol)
        if name.startswith("F."):  # softplus thresholds and saturating tails
            with f.case(f"{name} {dtype} thresholds"):
                dcheck(fn, edges, **tol)
    f.raise_if_any()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_round_half_to_even_and_signed_zero(dtype):
    vals = [-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5, -0.49999997, 5.5]
    r = dcheck(lambda m, x: m.round(x), dpair_vals(vals, dtype), rtol=0, atol=0)
    assert np.signbit(r[0].cpu().float().numpy()[3]), "round(-0.5) must be -0.0"
    z = dpair_vals([0.0, -0.0, 1.0, -1.0], dtype)
    for fn in (lambda m, a: m.neg(a), lambda m, a: m.trunc(-a * 0.5), lambda m, a: m.ceil(a - 0.5)):
        v, t = dcheck(fn, z)
        np.testing.assert_array_equal(np.signbit(v.cpu().float().numpy()), np.signbit(t.cpu().float().numpy()))


def test_gelu_bad_approximate_raises_like_torch():
    dcheck(lambda m, x: m.nn.functional.gelu(x, approximate="fast"), dpair((3,), "float32", seed=0))


# ------------------------------------------------------------------------------------- in-place unary

INPLACE_UNARY = ["neg_", "abs_", "exp_", "sqrt_", "sin_", "floor_", "round_", "sigmoid_", "reciprocal_", "tanh_",
                 "log_", "ceil_", "trunc_", "sign_", "square_", "relu_", "bitwise_not_", "logical_not_", "erf_",
                 "expm1_", "frac_", "rsqrt_"]


@pytest.mark.parametrize("name", INPLACE_UNARY)
def test_unary_inplace(name, rng):
    base = name[:-1]

    def fn(m, t):  # result and self: both must be the mutated tensor
        return getattr(t, name)(), t
    f = Failures()
    for dtype in ALL_DTYPES:
        for kind in (False, "transpose", "slice", "offset"):
            with f.case(f"{name} {dtype} {kind}"):
                x = uinput(base if base in UNARY else "neg", dtype, (6, 7), rng, kind)
                dcheck(fn, x, **{k: v for k, v in utol(base, dtype).items() if k != "upcast_ref"})
    f.raise_if_any()


@pytest.mark.parametrize("name", ["F.relu", "F.leaky_relu", "F.elu", "F.hardtanh", "F.silu", "F.mish"])
def test_activation_inplace_flag(name, rng):
    fn = {
        "F.relu": lambda m, x: (m.nn.functional.relu(x, inplace=True), x),
        "F.leaky_relu": lambda m, x: (m.nn.functional.leaky_relu(x, 0.1, inplace=True), x),
        "F.elu": lambda m, x: (m.nn.functional.elu(x, inplace=True), x),
        "F.hardtanh": lambda m, x: (m.nn.functional.hardtanh(x, inplace=True), x),
        "F.silu": lambda m, x: (m.nn.functional.silu(x, inplace=True), x),
        "F.mish": lambda m, x: (m.nn.functional.mish(x, inplace=True), x),
    }[name]
    f = Failures()
    for dtype in FLOAT_DTYPES:
        for kind in (False, "transpose", "offset"):
            with f.case(f"{name} {dtype} {kind}"):
                dcheck(fn, dpair((5, 4), dtype, noncontig=kind, rng=rng), **{
                    k: v for k, v in utol(name, dtype).items() if k != "upcast_ref"})
    f.raise_if_any()


# -------------------------------------------------------------------------------------------- clamp


@pytest.mark.parametrize("bounds", [(-1, 1), (0, None), (None, 0.5), (2, 1), (-1.5, 2.5), (3, 3), (True, None)],
                         ids=str)
def test_clamp_scalar_bounds(bounds, rng):
    lo, hi = bounds
    f = Failures()
    for dtype in ALL_DTYPES:
        with f.case(f"clamp{bounds} {dtype}"):
            x = dpair((4, 7), dtype, rng=rng)
            dcheck(lambda m, t: m.clamp(t, lo, hi), x)
            dcheck(lambda m, t: t.clamp(min=lo, max=hi), x)
            dcheck(lambda m, t: (t.clamp_(lo, hi), t)[1], clone(x))
            dcheck(lambda m, t: (t.clamp_(lo, hi), t)[1], dpair((5, 4), dtype, noncontig="transpose", rng=rng))
            dcheck(lambda m, t: m.clamp(t, lo, hi), dpair((1027,), dtype, noncontig="offset", rng=rng))
    f.raise_if_any()


def test_clamp_tensor_bounds_and_nan(rng):
    f = Failures()
    for dtype in ["float32", "int64", "float16", "bfloat16", "int8", "float64", "uint8"]:
        with f.case(f"tensor bounds {dtype}"):
            x, lo, hi = dpair((4, 5), dtype, rng=rng), dpair((5,), dtype, rng=rng), dpair((4, 1), dtype, rng=rng)
            dcheck(lambda m, t, a, b: m.clamp(t, a, b), x, lo, hi)
            dcheck(lambda m, t, a: m.clamp(t, min=a), x, lo)
            dcheck(lambda m, t, b: t.clamp(max=b), x, hi)
    for dtype in FLOAT_DTYPES:
        with f.case(f"nan input {dtype}"):
            dcheck(lambda m, t: m.clamp(t, -1.0, 1.0), dpair_vals([math.nan, -math.inf, math.inf, 0.5, -3.0], dtype))
    with f.case("int tensor, float bounds"):
        dcheck(lambda m, t: m.clamp(t, -0.5, 2.5), dpair((5,), "int32", rng=rng))
    for dtype in ALL_DTYPES:
        with f.case(f"clamp_min/clamp_max/zero_ {dtype}"):
            x = dpair((6, 7), dtype, noncontig="transpose", rng=rng)
            dcheck(lambda m, t: (t.clamp_min(1), t.clamp_max(-1), t.clamp_min(0.5)), x)
            dcheck(lambda m, t: (t.zero_(), t)[1], clone(x))
    f.raise_if_any()


# ---------------------------------------------------------------------------------------- where


WHERE_SHAPES = [((4, 5), (4, 5), (4, 5)), ((4, 1), (5,), (4, 5)), ((), (3,), (2, 1)), ((0, 3), (3,), ()),
                ((3, 1, 5), (4, 1), (1,)), ((1023,), (1023,), (1,))]


def test_where_every_dtype(rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        for sc, sa, sb in WHERE_SHAPES:
            with f.case(f"where {dtype} {sc} {sa} {sb}"):
                c, a, b = dpair(sc, "bool", rng=rng), dpair(sa, dtype, rng=rng), dpair(sb, dtype, rng=rng)
                dcheck(lambda m, c, a, b: m.where(c, a, b), c, a, b)
                dcheck(lambda m, c, a, b: a.where(c, b), c, a, b)
        with f.case(f"where {dtype} scalars and promotion"):
            c, a = dpair((4, 5), "bool", rng=rng), dpair((4, 5), dtype, rng=rng)
            b = dpair((5,), "float64" if dtype != "float64" else "int32", rng=rng)
            dcheck(lambda m, c, a: m.where(c, a, 0), c, a)
            dcheck(lambda m, c, a: m.where(c, 2.5, a), c, a)
            dcheck(lambda m, c, a: m.where(c, True, a), c, a)
            dcheck(lambda m, c, a, b: m.where(c, a, b), c, a, b)
            dcheck(lambda m, c: m.where(c, 1, 0), c)
        with f.case(f"where {dtype} non-contiguous, misaligned"):
            c = dpair((30, 41), "bool", noncontig="transpose", rng=rng)
            a, b = dpair((30, 41), dtype, noncontig="slice", rng=rng), dpair((41,), dtype, noncontig="offset", rng=rng)
            dcheck(lambda m, c, a, b: m.where(c, a, b), c, a, b)
    with f.case("where(cond) single argument"):
        dcheck(lambda m, c: m.where(c), dpair_vals([[True, False], [False, True]], "bool"))
    f.raise_if_any()


# ---------------------------------------------------------------------------------------- masked_fill


def test_masked_fill_every_dtype(rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        for value in (0, -1.5, True, math.inf, "device 0-dim", "cpu 0-dim"):
            with f.case(f"masked_fill {dtype} value={value!r}"):
                x, mask = dpair((4, 5), dtype, rng=rng), dpair((5,), "bool", rng=rng)
                if value == "device 0-dim":
                    val = Pair(vt.tensor(3, device=DEV), torch.tensor(3, device=DEV))
                elif value == "cpu 0-dim":
                    val = Pair(vt.tensor(-2), torch.tensor(-2))
                else:
                    val = value
                dcheck(lambda m, t, k, v: m.masked_fill(t, k, v), x, mask, val)
                dcheck(lambda m, t, k, v: (t.masked_fill_(k, v), t)[1], clone(x), mask, val)
        with f.case(f"masked_fill {dtype} non-contiguous self and mask"):
            x = dpair((6, 7), dtype, noncontig="transpose", rng=rng)
            mask = dpair((6, 7), "bool", noncontig="slice", rng=rng)
            dcheck(lambda m, t, k: t.masked_fill(k, 1), x, mask)
            dcheck(lambda m, t, k: (t.masked_fill_(k, 1), t)[1], x, mask)
    with f.case("masked_fill errors"):
        x = dpair((4, 5), "float32", rng=rng)
        dcheck(lambda m, t: t.masked_fill(m.ones(4, 5, device=DEV), 0.0), x)
        dcheck(lambda m, t: t.masked_fill(m.ones(3, dtype=m.bool, device=DEV), 0.0), x)
    f.raise_if_any()
