"""CUDA binary elementwise ops against torch on the GPU: arithmetic (alpha, rounding modes), pow, maximum/minimum,
atan2, comparisons, logical and bitwise ops, operators and in-place variants, for every dtype; broadcasting, 0-dim
and empty tensors, odd sizes (vectorised main loop + tail), misaligned views, non-contiguous inputs and outputs,
Python scalars on either side, type promotion across dtypes, CPU 0-dim operands, the mixed-device error, and a
2**22+3-element tensor. Integer division by zero is not tested (torch's CUDA kernels do not raise there).

GPU run: PYTHONPATH=python python -m pytest tests/cuda -q -p no:cacheprovider
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import (
    CUDA_MARKS,
    DEV,
    Failures,
    clone,
    dcheck,
    dpair,
    dpair_np,
    dpair_vals,
    needs_two_devices,
)
from helpers import (
    ALL_DTYPES,
    FLOAT_DTYPES,
    INT_DTYPES,
    Pair,
    _noncontig_plan,
    special_values,
)

pytestmark = CUDA_MARKS

ARITH = {
    "add": lambda m, a, b: m.add(a, b),
    "add_alpha": lambda m, a, b: m.add(a, b, alpha=2),
    "add_alpha_float": lambda m, a, b: a.add(b, alpha=0.5),
    "sub": lambda m, a, b: m.sub(a, b),
    "sub_alpha": lambda m, a, b: a.sub(b, alpha=-3),
    "mul": lambda m, a, b: m.mul(a, b),
    "div": lambda m, a, b: m.div(a, b),
    "div_trunc": lambda m, a, b: m.div(a, b, rounding_mode="trunc"),
    "div_floor": lambda m, a, b: a.div(b, rounding_mode="floor"),
    "floor_divide": lambda m, a, b: m.floor_divide(a, b),
    "remainder": lambda m, a, b: m.remainder(a, b),
    "fmod": lambda m, a, b: m.fmod(a, b),
    "pow": lambda m, a, b: m.pow(a, b),
    "maximum": lambda m, a, b: m.maximum(a, b),
    "minimum": lambda m, a, b: m.minimum(a, b),
    "atan2": lambda m, a, b: m.atan2(a, b),
    "op_add": lambda m, a, b: a + b,
    "op_sub": lambda m, a, b: a - b,
    "op_mul": lambda m, a, b: a * b,
    "op_truediv": lambda m, a, b: a / b,
    "op_floordiv": lambda m, a, b: a // b,
    "op_mod": lambda m, a, b: a % b,
    "op_pow": lambda m, a, b: a ** b,
}
LOGIC = {
    "eq": lambda m, a, b: m.eq(a, b), "ne": lambda m, a, b: m.ne(a, b), "lt": lambda m, a, b: m.lt(a, b),
    "le": lambda m, a, b: m.le(a, b), "gt": lambda m, a, b: a.gt(b), "ge": lambda m, a, b: a.ge(b),
    "op_eq": lambda m, a, b: a == b, "op_ne": lambda m, a, b: a != b, "op_lt": lambda m, a, b: a < b,
    "op_le": lambda m, a, b: a <= b, "op_gt": lambda m, a, b: a > b, "op_ge": lambda m, a, b: a >= b,
    "logical_and": lambda m, a, b: m.logical_and(a, b), "logical_or": lambda m, a, b: m.logical_or(a, b),
    "logical_xor": lambda m, a, b: a.logical_xor(b),
    "bitwise_and": lambda m, a, b: m.bitwise_and(a, b), "bitwise_or": lambda m, a, b: m.bitwise_or(a, b),
    "bitwise_xor": lambda m, a, b: m.bitwise_xor(a, b),
    "op_and": lambda m, a, b: a & b, "op_or": lambda m, a, b: a | b, "op_xor": lambda m, a, b: a ^ b,
}
BINARY = {**ARITH, **LOGIC}
DIVISION = {"div", "div_trunc", "div_floor", "floor_divide", "remainder", "fmod", "op_truediv", "op_floordiv",
            "op_mod"}
POW = {"pow", "op_pow"}
ROUNDING = {"div_trunc", "div_floor", "floor_divide", "op_floordiv"}


def operand(op, shape, dtype, rng, kind=False, second=False):
    """Inputs safe for `op`: integer divisors non-zero, integer powers small, ties common for comparisons."""
    if op in POW:
        if dtype in INT_DTYPES:
            lo, hi = (0, 4) if second or dtype == "uint8" else (-3, 4)
        else:
            lo, hi = (-2.5, 2.5) if second else (0.05, 3.0)
        return dpair(shape, dtype, noncontig=kind, low=lo, high=hi, rng=rng)
    if op in LOGIC:
        if dtype in FLOAT_DTYPES:
            base, view = _noncontig_plan(shape, kind)
            p = dpair_np(rng.integers(-3, 4, size=base).astype(np.float64) / 2, dtype)
            return Pair(view(p.v), view(p.t))
        return dpair(shape, dtype, noncontig=kind, low=0 if dtype == "uint8" else -3, high=4, rng=rng)
    lo, hi = (-10, 11) if dtype in INT_DTYPES else (None, None)
    if dtype == "uint8":
        lo = 0
    return dpair(shape, dtype, noncontig=kind, low=lo, high=hi, nonzero=second and op in DIVISION, rng=rng)


def operands(op, sa, sb, dtype, rng, ka=False, kb=False):
    return operand(op, sa, dtype, rng, ka), operand(op, sb, dtype, rng, kb, second=True)


def btol(op, dtype):
    # a 16-bit quotient may be rounded before truncating/flooring (torch's CPU kernels) or not (opmath): one unit
    if op in ROUNDING and dtype in ("float16", "bfloat16"):
        return {"atol": 1.0}
    if op in ("atan2", "pow", "op_pow") and dtype in ("float32",) + tuple(INT_DTYPES) + ("bool",):
        return {"rtol": 1e-5, "atol": 1e-6, "upcast_ref": True}
    if (op in ("atan2", "pow", "op_pow") or "alpha" in op) and dtype in ("float16", "bfloat16"):
        return {"upcast_ref": True}  # one rounding of a + alpha * b (opmath) or torch's 16-bit CPU steps
    return {}


BCAST_SHAPES = [((), ()), ((7,), (7,)), ((3, 1, 5), (4, 5)), ((0, 4), (4,)), ((), (3,)), ((2, 3), ()),
                ((2, 1, 3), (2, 4, 1)), ((1,), (0,)), ((33, 17), (33, 17))]


@pytest.mark.parametrize("op", list(BINARY))
def test_binary_every_dtype_and_broadcast(op, rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        for sa, sb in BCAST_SHAPES:
            with f.case(f"{op} {dtype} {sa} {sb}"):
                a, b = operands(op, sa, sb, dtype, rng)
                dcheck(BINARY[op], a, b, **btol(op, dtype))
    f.raise_if_any()


KIND_PAIRS = [("transpose", False), (False, "slice"), ("expand", "transpose"), ("offset", "expand"),
              ("slice", "slice"), ("offset", "offset")]


@pytest.mark.parametrize("op", ["add_alpha", "sub", "mul", "div", "div_trunc", "floor_divide", "remainder", "fmod",
                                "pow", "maximum", "atan2", "lt", "eq", "logical_xor", "bitwise_or"])
def test_binary_noncontiguous(op, rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        for ka, kb in KIND_PAIRS:
            with f.case(f"{op} {dtype} {ka}/{kb}"):
                a, b = operands(op, (6, 5), (6, 5), dtype, rng, ka, kb)
                dcheck(BINARY[op], a, b, **btol(op, dtype))
        with f.case(f"{op} {dtype} 3-d permuted vs broadcast"):
            a = operand(op, (4, 5, 6), dtype, rng)
            b = operand(op, (6, 1, 4), dtype, rng, second=True)
            dcheck(lambda m, x, y: BINARY[op](m, x.permute(2, 1, 0), y), a, b, **btol(op, dtype))
    f.raise_if_any()


ODD_SIZES = [1, 3, 17, 1023, 4099]


@pytest.mark.parametrize("op", ["add", "mul", "div", "maximum", "pow", "remainder", "lt", "bitwise_xor"])
def test_binary_odd_sizes_and_misaligned(op, rng):
    """Sizes around the vector width and views starting one element in (x[1:]: 16-byte vector loads unaligned)."""
    f = Failures()
    for dtype in ALL_DTYPES:
        for n in ODD_SIZES:
            for ka, kb in ((False, False), ("offset", False), (False, "offset"), ("offset", "offset"),
                           ("slice", "offset")):
                with f.case(f"{op} {dtype} n={n} {ka}/{kb}"):
                    a, b = operands(op, (n,), (n,), dtype, rng, ka, kb)
                    dcheck(BINARY[op], a, b, **btol(op, dtype))
        with f.case(f"{op} {dtype} x[3:] of (4099,), 2-D offset rows"):
            a, b = operands(op, (4102,), (4099,), dtype, rng)
            dcheck(lambda m, x, y: BINARY[op](m, x[3:], y), a, b, **btol(op, dtype))
            c, d = operands(op, (9, 130), (129,), dtype, rng)
            dcheck(lambda m, x, y: BINARY[op](m, x[1:, 1:], y), c, d, **btol(op, dtype))
    f.raise_if_any()


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "uint8"])
def test_large_add(dtype, rng):
    n = 2**22 + 3
    a, b = operands("add", (n,), (n,), dtype, rng)
    dcheck(lambda m, x, y: x + y, a, b, msg=f"{dtype}: ")
    dcheck(lambda m, x, y: m.add(x[1:], y[:-1], alpha=3), a, b, msg=f"{dtype} misaligned: ", **btol("alpha", dtype))
    dcheck(lambda m, x, y: x[:-3].view(2**11, 2**11).t() * y[: 2**11], a, b, msg=f"{dtype} transposed mul: ")
    dcheck(lambda m, x: (x.add_(1), x)[1], clone(a), msg=f"{dtype} add_: ")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_binary_special_values(dtype):
    vals = special_values(dtype)
    a = dpair_vals([[v] for v in vals], dtype)  # (n, 1)
    b = dpair_vals([vals], dtype)              # (1, n)
    f = Failures()
    for op in ["add", "sub", "mul", "div", "div_trunc", "div_floor", "floor_divide", "remainder", "fmod", "pow",
               "maximum", "minimum", "atan2", "eq", "lt", "ge", "ne", "logical_and", "logical_xor"]:
        with f.case(f"{op} {dtype}"):
            dcheck(BINARY[op], a, b, **btol(op, dtype))
    f.raise_if_any()


# ------------------------------------------------------------------------------- Python scalars


SCALAR_OPS = {
    "add": lambda m, a, s: a + s, "radd": lambda m, a, s: s + a, "sub": lambda m, a, s: a - s,
    "rsub": lambda m, a, s: s - a, "mul": lambda m, a, s: a * s, "rmul": lambda m, a, s: s * a,
    "truediv": lambda m, a, s: a / s, "rtruediv": lambda m, a, s: s / a, "floordiv": lambda m, a, s: a // s,
    "rfloordiv": lambda m, a, s: s // a, "mod": lambda m, a, s: a % s, "rmod": lambda m, a, s: s % a,
    "pow": lambda m, a, s: a ** s, "rpow": lambda m, a, s: s ** a,
    "fn_add_alpha": lambda m, a, s: m.add(a, s, alpha=2),
    "fn_div_floor": lambda m, a, s: m.div(a, s, rounding_mode="floor"),
    "fn_div_trunc": lambda m, a, s: a.div(s, rounding_mode="trunc"), "fn_fmod": lambda m, a, s: m.fmod(a, s),
    "fn_remainder": lambda m, a, s: m.remainder(a, s), "fn_pow_base": lambda m, a, s: m.pow(s, a),
    "maximum_0dim": lambda m, a, s: m.maximum(a, m.tensor(s, device=DEV)),
    "eq": lambda m, a, s: a == s, "lt": lambda m, a, s: a < s, "rge": lambda m, a, s: s >= a,
    "and": lambda m, a, s: a & s, "rxor": lambda m, a, s: s ^ a,
}
SCALARS = [3, -2, 2.5, -0.75, True, 0.0]
SCALAR_DIV = {"truediv", "floordiv", "mod", "fn_div_floor", "fn_div_trunc", "fn_fmod", "fn_remainder"}
SCALAR_RDIV = {"rtruediv", "rfloordiv", "rmod"}


@pytest.mark.parametrize("op", list(SCALAR_OPS))
def test_python_scalar_operands(op, rng):
    """int, float and bool Python scalars on either side (no host round trip needed; values checked)."""
    f = Failures()
    for dtype in ALL_DTYPES:
        for s in SCALARS:
            if op in SCALAR_DIV and type(s) is int and s == 0:
                continue  # integer division by zero
            low, high = None, None
            if op in ("pow", "rpow", "fn_pow_base"):
                low, high = ((0 if op != "pow" or dtype == "uint8" else -3), 4) if dtype in INT_DTYPES else (0.1, 3.0)
            elif dtype == "uint8":
                low = 0
            with f.case(f"{op} {dtype} scalar={s!r}"):
                a = dpair((4, 5), dtype, low=low, high=high, nonzero=op in SCALAR_RDIV, rng=rng)
                dcheck(SCALAR_OPS[op], a, s, **btol("pow" if "pow" in op else op, dtype))
    f.raise_if_any()


def test_zero_dim_device_tensors(rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        a = operand("div", (3, 4), dtype, rng)
        s = operand("div", (), dtype, rng, second=True)
        for op in ("add", "sub", "mul", "div", "maximum", "lt", "bitwise_and", "remainder"):
            with f.case(f"{op} {dtype} tensor-0dim / 0dim-0dim"):
                dcheck(BINARY[op], a, s)
                dcheck(BINARY[op], s, s)
        with f.case(f"{dtype} 0dim-tensor first"):
            dcheck(BINARY["mul"], s, a)
            dcheck(BINARY["op_sub"], s, a)
    for da, ds in (("int32", "float64"), ("float16", "int64"), ("uint8", "bool"), ("int8", "float32"),
                   ("float16", "float64"), ("bool", "int32"), ("bfloat16", "float32")):
        with f.case(f"promotion {da} with 0-dim {ds}"):
            a, s = dpair((5, 3), da, rng=rng), dpair((), ds, rng=rng, nonzero=True)
            for op in ("add", "mul", "div", "maximum", "eq"):
                dcheck(BINARY[op], a, s, msg=f"{op}: ")
                dcheck(BINARY[op], s, a, msg=f"{op} reversed: ")
    f.raise_if_any()


PROMOTION = [("int8", "float16"), ("uint8", "bool"), ("uint8", "int8"), ("int16", "int64"), ("bool", "float32"),
             ("float16", "bfloat16"), ("bfloat16", "int32"), ("float16", "float64"), ("int32", "float32"),
             ("bool", "int8"), ("uint8", "float64"), ("int64", "bfloat16"), ("int8", "int16"), ("bool", "bool")]


@pytest.mark.parametrize("op", ["add", "sub_alpha", "mul", "div", "floor_divide", "remainder", "pow", "maximum",
                                "atan2", "eq", "lt", "logical_or", "bitwise_and", "op_xor"])
def test_type_promotion(op, rng):
    f = Failures()
    for da, db in PROMOTION:
        for x, y in ((da, db), (db, da)):
            with f.case(f"{op} {x} with {y}"):
                a = operand(op, (4, 5), x, rng)
                b = operand(op, (5,), y, rng, second=True)
                if op in DIVISION and y == "bool":
                    b = dpair((5,), "bool", nonzero=True, rng=rng)
                dcheck(BINARY[op], a, b, **btol(op, "float16" if "16" in x + y else "float32"))
    f.raise_if_any()


# -------------------------------------------------------------------------------------------- in-place

INPLACE = {
    "add_": lambda m, a, b: a.add_(b), "add_alpha_": lambda m, a, b: a.add_(b, alpha=2),
    "sub_": lambda m, a, b: a.sub_(b), "mul_": lambda m, a, b: a.mul_(b), "div_": lambda m, a, b: a.div_(b),
    "div_floor_": lambda m, a, b: a.div_(b, rounding_mode="floor"),
    "div_trunc_": lambda m, a, b: a.div_(b, rounding_mode="trunc"), "pow_": lambda m, a, b: a.pow_(b),
    "remainder_": lambda m, a, b: a.remainder_(b), "fmod_": lambda m, a, b: a.fmod_(b),
    "floor_divide_": lambda m, a, b: a.floor_divide_(b), "atan2_": lambda m, a, b: a.atan2_(b),
    "bitwise_and_": lambda m, a, b: a.bitwise_and_(b), "bitwise_or_": lambda m, a, b: a.bitwise_or_(b),
    "bitwise_xor_": lambda m, a, b: a.bitwise_xor_(b), "logical_and_": lambda m, a, b: a.logical_and_(b),
    "logical_or_": lambda m, a, b: a.logical_or_(b), "eq_": lambda m, a, b: a.eq_(b), "lt_": lambda m, a, b: a.lt_(b),
    "ge_": lambda m, a, b: a.ge_(b),
}
_IOPS = {"iadd": "__iadd__", "isub": "__isub__", "imul": "__imul__", "itruediv": "__itruediv__",
         "ifloordiv": "__ifloordiv__", "imod": "__imod__", "ipow": "__ipow__", "iand": "__iand__", "ior": "__ior__",
         "ixor": "__ixor__"}


def _inplace(name):
    """fn(m, a, b) -> (result, a): the result must be (and show) the mutated self."""
    if name in INPLACE:
        return lambda m, a, b: (INPLACE[name](m, a, b), a)
    return lambda m, a, b: (getattr(a, _IOPS[name])(b), a)


def _base_op(name):
    for key, op in (("pow", "pow"), ("div", "div"), ("mod", "div"), ("remainder", "div"), ("floordiv", "div"),
                    ("floor_divide", "div"), ("atan2", "atan2"), ("bitwise", "bitwise_and"), ("and", "bitwise_and"),
                    ("or", "bitwise_or"), ("xor", "bitwise_xor"), ("logical", "logical_and"), ("eq", "eq"),
                    ("lt", "eq"), ("ge", "eq")):
        if key in name:
            return op
    return "add"


def ipt(op, dtype):
    return {k: v for k, v in btol(op, dtype).items() if k != "upcast_ref"}


@pytest.mark.parametrize("name", list(INPLACE) + list(_IOPS))
def test_inplace(name, rng):
    f = Failures()
    op = _base_op(name)
    tol_op = "div_trunc" if "trunc" in name or "floor" in name else op
    # (no float64-reference fallback for in-place ops: it would re-run torch on the already mutated input)
    for dtype in ALL_DTYPES:
        for bshape in [(4, 5), (5,), (), (1, 5)]:
            with f.case(f"{name} {dtype} other={bshape}"):
                a, b = operands(op, (4, 5), bshape, dtype, rng)
                dcheck(_inplace(name), a, b, **ipt(tol_op, dtype))
        for kind in ("transpose", "slice", "offset"):  # non-contiguous and misaligned outputs
            with f.case(f"{name} {dtype} self={kind}"):
                a, b = operands(op, (6, 7), (6, 7), dtype, rng, kind, "transpose")
                dcheck(_inplace(name), a, b, **ipt(tol_op, dtype))
        with f.case(f"{name} {dtype} python scalar"):
            a = operand(op, (3, 4), dtype, rng)
            s = True if dtype == "bool" else (2 if op != "atan2" else 1.5)
            if name in ("atan2_", "logical_and_", "logical_or_"):  # torch takes no Python number here
                s = Pair(vt.tensor(s, device=DEV), torch.tensor(s, device=DEV))
            dcheck(lambda m, x, y: _inplace(name)(m, x, y)[1], a, s, **ipt(tol_op, dtype))
    f.raise_if_any()


def test_inplace_promotion_rules(rng):
    """self keeps its dtype; a result type that cannot be cast back raises (as torch: RuntimeError)."""
    f = Failures()
    for da, db in PROMOTION:
        for x, y in ((da, db), (db, da)):
            for name in ("add_", "mul_", "div_", "bitwise_or_", "eq_"):
                with f.case(f"{name} {x} self, {y} other"):
                    a = operand(_base_op(name), (4, 5), x, rng)
                    b = operand(_base_op(name), (4, 5), y, rng, second=True)
                    if name == "div_" and y == "bool":
                        b = dpair((4, 5), "bool", nonzero=True, rng=rng)
                    dcheck(_inplace(name), a, b)
    f.raise_if_any()


def test_inplace_visible_through_views(rng):
    p = dpair((40, 60), "float32", rng=rng)
    for m, x in ((vt, p.v), (torch, p.t)):
        x[1:30].add_(100)
        x.t()[2].mul_(-1)
        x[:, ::2].sub_(m.ones(30, device=DEV))
        x[3:, 1:][::2].div_(x[0, 1:].clone().abs_().add_(1))
    dcheck(lambda m, x: x, p)


# -------------------------------------------------------------------------------------- devices


@needs_two_devices
def test_cpu_zero_dim_operand_is_allowed(rng):
    f = Failures()
    for dtype in ["float32", "int64", "float16", "bool"]:
        a = dpair((3, 4), dtype, rng=rng)
        for sdt, val in (("float64", 2.5), ("int64", 3), ("bool", True), (dtype, 2)):
            s = Pair(vt.tensor(val, dtype=getattr(vt, sdt)), torch.tensor(val, dtype=getattr(torch, sdt)))
            for op in ("add", "mul", "sub", "div", "eq", "maximum"):
                with f.case(f"{op} cuda {dtype} with cpu 0-dim {sdt}"):
                    dcheck(BINARY[op], a, s)
                    dcheck(BINARY[op], s, a)
    f.raise_if_any()


@needs_two_devices
@pytest.mark.parametrize("op", ["add", "mul", "maximum", "eq", "atan2", "where", "add_", "cpu_add_"])
def test_mixed_device_error_names_both(op):
    fns = {
        "where": lambda m, a, b: m.where(a > 0, a, b),
        "add_": lambda m, a, b: a.add_(b),
        "cpu_add_": lambda m, a, b: b.add_(a),
    }
    fn = fns.get(op) or BINARY[op]
    for a_dev, b_dev in ((DEV, "cpu"), ("cpu", DEV)):
        t = torch.ones(3, device=a_dev), torch.ones(3, device=b_dev)
        with pytest.raises(RuntimeError):
            fn(torch, *t)
        with pytest.raises(RuntimeError) as ei:
            fn(vt, vt.ones(3, device=a_dev), vt.ones(3, device=b_dev))
        text = str(ei.value).lower()
        assert "cpu" in text and "cuda" in text, f"{op}: the message must name both devices: {ei.value}"


def test_isclose_allclose_equal(rng):
    """Composed from elementwise ops and a reduction; results (bool tensors and Python bools) as torch's."""
    f = Failures()
    for dtype in ALL_DTYPES:
        with f.case(f"{dtype}"):
            a = dpair((40, 50), dtype, rng=rng)
            b = clone(a)
            b.v[3, 4], b.t[3, 4] = (True, True) if dtype == "bool" else (7, 7)
            for kw in ({}, {"rtol": 0.0, "atol": 0.0}, {"atol": 1e-1}, {"equal_nan": True}):
                dcheck(lambda m, x, y, k: m.isclose(x, y, **k), a, b, kw)
                dcheck(lambda m, x, y, k: m.allclose(x, y, **k), a, b, kw)
            dcheck(lambda m, x, y: (m.equal(x, y), m.equal(x, x.t().contiguous().t()), x.equal(x[:3])), a, b)
    with f.case("nan and inf"):
        n = dpair_vals([1.0, float("nan"), float("inf")], "float32")
        dcheck(lambda m, x: (m.allclose(x, x), m.allclose(x, x, equal_nan=True), m.equal(x, x)), n)
    f.raise_if_any()


@pytest.mark.parametrize("ndim", [4, 5, 7, 9])
def test_strided_layouts_of_many_dims(ndim, rng):
    """The strided kernel's offset calculator unrolls its first few dims and loops over the rest (Note [Unrolled
    dims] in loops.cuh): permuted views of 4-9 dims that no coalescing can merge, through a binary op, a unary op,
    an in-place op and reductions over inner, outer and mixed dims."""
    shape = tuple(2 + (i % 3) for i in range(ndim))
    perm = tuple(reversed(range(ndim)))
    f = Failures()
    for dtype in ("float32", "float16", "int64"):
        with f.case(f"{ndim}-d {dtype}"):
            a = dpair(shape, dtype, rng=rng)
            b = dpair(shape[::-1], dtype, rng=rng)
            dcheck(lambda m, x, y: x.permute(perm)[..., ::2] * 3 + y[..., ::2], a, b)
            dcheck(lambda m, x: m.neg(x.permute(perm)), a)
            dcheck(lambda m, x, y: x.clone().permute(perm).add_(y), a, b)
            dcheck(lambda m, x: x.permute(perm).sum(dim=(0, ndim - 1)), a)
            dcheck(lambda m, x: x.permute(perm).amax(dim=tuple(range(1, ndim, 2))), a)
    f.raise_if_any()
