"""vt._foreach_* against torch._foreach_*: every overload of the second operand (Scalar, Scalar list, Tensor list,
0-dim Tensor, packed 1-D scalars), out of place and in place, aliasing inside and across the lists, the list
checks' errors, dtype promotion, gradients of the out-of-place ops, and the EMA idioms model code uses."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch import _foreach as F

from ag_helpers import check_grads, leaves

SHAPES = [(3, 4), (5,), (), (0, 3), (2, 1, 3)]


def lists(seed=0, shapes=SHAPES, low=0.2, high=1.5, dtype="float64"):
    """Equal (vt list, torch list) of tensors with values in [low, high), signs mixed when low < 0."""
    rng = np.random.default_rng(seed)
    arrs = [rng.uniform(low, high, s).astype(dtype) for s in shapes]
    return [vt.from_numpy(a.copy()) for a in arrs], [torch.from_numpy(a.copy()) for a in arrs]


def fn(m, name):
    return getattr(F, name) if m is vt else getattr(torch, name)


def assert_same(vs, ts, rtol=1e-12):
    assert len(vs) == len(ts)
    for v, t in zip(vs, ts):
        assert tuple(v.shape) == tuple(t.shape)
        assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_allclose(np.array(v.tolist(), dtype=float), np.array(t.tolist(), dtype=float),
                                   rtol=rtol, atol=1e-14, equal_nan=True)


def run_both(name, make_args, inplace, **kw):
    """Calls vt's and torch's op on equal fresh inputs; returns ((vt result, vt self), (torch result, torch self))."""
    out = []
    for m, k in ((vt, 0), (torch, 1)):
        args = make_args(m, k)
        res = fn(m, name)(*args, **kw)
        if inplace:
            assert res is args[0]
        else:
            assert isinstance(res, tuple)
        out.append((res, args[0]))
    return out


@pytest.mark.parametrize("op", F.UNARY)
def test_unary(op):
    low, high = (-0.9, 0.9) if op in ("acos", "asin", "atan", "erf", "sign", "neg", "abs", "tan") else (0.2, 3.7)
    for inplace in (False, True):
        name = f"_foreach_{op}" + ("_" if inplace else "")
        (v, vs), (t, ts) = run_both(name, lambda m, k: (list(lists(1, low=low, high=high)[k]),), inplace)
        assert_same(v, t)
        assert_same(vs, ts)


def scalar_of(m, kind, n, seed):
    """A second operand of the given overload kind for a list of n tensors."""
    rng = np.random.default_rng(seed)
    if kind == "Scalar":
        return 1.75
    if kind == "int":
        return 2
    if kind == "ScalarList":
        return [float(x) for x in rng.uniform(0.5, 2.0, n)]
    if kind == "Tensor":
        return m.tensor(1.25, dtype=m.float64)
    return list(lists(seed)[0 if m is vt else 1])  # "List": tensors of the same shapes


BINARY_CASES = [(op, kind) for op in F.BINARY for kind in ("Scalar", "int", "ScalarList", "List", "Tensor")]


@pytest.mark.parametrize("op,kind", BINARY_CASES)
@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
def test_binary_overloads(op, kind, inplace):
    name = f"_foreach_{op}" + ("_" if inplace else "")
    (v, vs), (t, ts) = run_both(name, lambda m, k: (list(lists(2)[k]), scalar_of(m, kind, len(SHAPES), 3)),
                                inplace)
    assert_same(v, t)
    assert_same(vs, ts)


@pytest.mark.parametrize("op,kind", [("add", "List"), ("sub", "List"), ("add", "Tensor")])
@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
def test_alpha(op, kind, inplace):
    name = f"_foreach_{op}" + ("_" if inplace else "")
    (v, vs), (t, ts) = run_both(name, lambda m, k: (list(lists(4)[k]), scalar_of(m, kind, len(SHAPES), 5)),
                                inplace, alpha=-0.3)
    assert_same(v, t)
    assert_same(vs, ts)


def test_pow_scalar_base():
    (v, _), (t, _) = run_both("_foreach_pow", lambda m, k: (2.5, list(lists(6)[k])), False)
    assert_same(v, t)


@pytest.mark.parametrize("kind", ["Scalar", "ScalarList", "List", "Tensor"])
@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
def test_lerp(kind, inplace):
    def args(m, k):
        w = scalar_of(m, kind, len(SHAPES), 7)
        w = [x * 0.4 for x in w] if kind == "List" else (0.3 if kind == "Scalar" else w)
        return list(lists(8)[k]), list(lists(9, low=-2, high=2)[k]), w
    (v, vs), (t, ts) = run_both("_foreach_lerp" + ("_" if inplace else ""), args, inplace)
    assert_same(v, t)
    assert_same(vs, ts)


@pytest.mark.parametrize("op", ["addcmul", "addcdiv"])
@pytest.mark.parametrize("kind", ["default", "Scalar", "ScalarList", "packed"])
@pytest.mark.parametrize("inplace", [False, True], ids=["out", "inplace"])
def test_pointwise(op, kind, inplace):
    def args(m, k):
        out = [list(lists(s, low=-1.5 if s == 10 else 0.2)[k]) for s in (10, 11, 12)]
        if kind == "Scalar":
            out.append(-0.7)
        elif kind == "ScalarList":
            out.append([0.5, -1.0, 2.0, 3, 0.25])
        elif kind == "packed":
            out.append(m.tensor([0.5, -1.0, 2.0, 3.0, 0.25], dtype=m.float64))
        return out
    (v, vs), (t, ts) = run_both(f"_foreach_{op}" + ("_" if inplace else ""), args, inplace)
    assert_same(v, t)
    assert_same(vs, ts)


def test_copy_zero_clone_max():
    (v, vs), (t, ts) = run_both("_foreach_copy_", lambda m, k: (
        list(lists(13)[k][:2]), [m.ones(4, dtype=m.float64), m.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 4).double()
                                 [:, :1].expand(5, 1).reshape(5)]), True)
    assert_same(vs, ts)
    (v, vs), (t, ts) = run_both("_foreach_zero_", lambda m, k: (list(lists(14)[k]),), True)
    assert_same(vs, ts)
    if hasattr(torch, "_foreach_clone"):
        (v, vs), (t, ts) = run_both("_foreach_clone", lambda m, k: (list(lists(15)[k]),), False)
    else:  # torch 2.11 has no _foreach_clone (2.13, which vt follows, has): what it returns is each tensor's clone
        vs, ts = (list(x) for x in lists(15))
        v, t = F._foreach_clone(vs), [x.clone() for x in ts]
        assert isinstance(v, tuple)
    assert_same(v, t)
    assert all(a is not b for a, b in zip(v, vs))
    nonempty = [s for s in SHAPES if 0 not in s]
    (v, _), (t, _) = run_both("_foreach_max", lambda m, k: (list(lists(16, nonempty, -1, 1)[k]),), False)
    assert_same(v, t)


def test_aliasing():
    def scenario(m, k):
        a = list(lists(17)[k])
        b = list(lists(18)[k])
        f = (lambda n: fn(m, n))
        f("_foreach_add_")(a, a, alpha=0.5)  # self as its own other
        f("_foreach_addcmul_")(a, a, b, value=0.1)
        f("_foreach_lerp_")(b, b, 0.3)
        x = a[0]
        f("_foreach_mul_")([x, x], 1.5)  # one tensor twice in self: scaled twice
        f("_foreach_addcdiv_")(b, a, a, [1.0] * len(b))
        y = a[1].reshape(-1)
        f("_foreach_add_")([a[1], y], [y, a[1]])  # views of one buffer, each the other's operand
        return a + b
    assert_same(scenario(vt, 0), scenario(torch, 1))


def test_dtypes():
    for m in (vt, torch):
        out = fn(m, "_foreach_add")([m.arange(3), m.ones(2, dtype=m.int32)], 1.5)
        assert [str(o.dtype).split(".")[-1] for o in out] == ["float32", "float32"]
        out = fn(m, "_foreach_div")([m.arange(3)], 2)
        assert str(out[0].dtype).split(".")[-1] == "float32"
        with pytest.raises(RuntimeError, match="can't be cast"):
            fn(m, "_foreach_add_")([m.arange(3)], 1.5)
        with pytest.raises(RuntimeError):
            fn(m, "_foreach_neg")([m.ones(2, dtype=m.bool)])


ERRORS = [
    ("self empty", lambda m: fn(m, "_foreach_add")([], 1), RuntimeError, "at least one tensor"),
    ("List length", lambda m: fn(m, "_foreach_add")([m.ones(2), m.ones(3)], [m.ones(2)]), RuntimeError,
     "same number of tensors, got 2 and 1"),
    ("List length in place", lambda m: fn(m, "_foreach_mul_")([m.ones(2)], [m.ones(2), m.ones(2)]), RuntimeError,
     "same number of tensors, got 1 and 2"),
    ("ScalarList length", lambda m: fn(m, "_foreach_sub_")([m.ones(2), m.ones(3)], [1.0]), RuntimeError,
     "same number of elements as scalar list"),
    ("Tensor not 0-dim", lambda m: fn(m, "_foreach_mul")([m.ones(2)], m.ones(1)), RuntimeError,
     "0 dim but it has 1 dimensions"),
    ("Tensor not 0-dim, add", lambda m: fn(m, "_foreach_add_")([m.ones(2)], m.ones(2)), RuntimeError,
     "0 dim but it has 1 dimensions and 2 elements"),
    ("Tensor, maximum", lambda m: fn(m, "_foreach_maximum")([m.ones(2)], m.ones(2)), TypeError, None),
    ("lerp length", lambda m: fn(m, "_foreach_lerp_")([m.ones(2)], [m.ones(2), m.ones(2)], 0.5), RuntimeError,
     "same number of tensors, got 1 and 2"),
    ("lerp weights", lambda m: fn(m, "_foreach_lerp")([m.ones(2)], [m.ones(2)], [m.ones(2)] * 2), RuntimeError,
     "same number of tensors, got 1 and 2"),
    ("addcmul length", lambda m: fn(m, "_foreach_addcmul")([m.ones(2)] * 2, [m.ones(2)] * 2, [m.ones(2)]),
     RuntimeError, "same number of tensors, got 2 and 1"),
    ("addcdiv scalars", lambda m: fn(m, "_foreach_addcdiv_")([m.ones(2)] * 2, [m.ones(2)] * 2, [m.ones(2)] * 2,
                                                              [1.0]), RuntimeError, "same number of elements"),
    ("packed 0-dim", lambda m: fn(m, "_foreach_addcmul")([m.ones(2)], [m.ones(2)], [m.ones(2)], m.tensor(2.0)),
     RuntimeError, "Expected packed scalar Tensor to be of dimension 1. Got 0 instead."),
    ("packed length", lambda m: fn(m, "_foreach_addcdiv")([m.ones(2)], [m.ones(2)], [m.ones(2)], m.ones(3)),
     RuntimeError, "Expected length of scalars to match input of length 1 but got 3 instead."),
    ("copy_ length", lambda m: fn(m, "_foreach_copy_")([m.ones(2)] * 2, [m.ones(2)]), RuntimeError,
     "same number of tensors, got 2 and 1"),
    ("shape mismatch", lambda m: fn(m, "_foreach_add")([m.ones(3)], [m.ones(2)]), RuntimeError, None),
    ("in-place broadcast", lambda m: fn(m, "_foreach_add_")([m.ones(2)], [m.ones(2, 2)]), RuntimeError, None),
    ("Scalar that requires grad", lambda m: fn(m, "_foreach_sub")([m.ones(2)], m.tensor(2.0, requires_grad=True)),
     TypeError, None),
    ("alpha with Scalar", lambda m: fn(m, "_foreach_add")([m.ones(2)], 2, alpha=3), TypeError, None),
    ("alpha on mul", lambda m: fn(m, "_foreach_mul")([m.ones(2)], [m.ones(2)], alpha=3), TypeError, None),
    ("element not a Tensor", lambda m: fn(m, "_foreach_add")([m.ones(2), m.ones(2)], [m.ones(2), 1]), TypeError,
     None),
    ("self element", lambda m: fn(m, "_foreach_sqrt")([m.ones(2), 3]), TypeError, "element 1"),
    ("other a string", lambda m: fn(m, "_foreach_add")([m.ones(2)], "x"), TypeError, None),
    ("leaf in place", lambda m: fn(m, "_foreach_add_")([m.ones(2, requires_grad=True)], 1), RuntimeError,
     "leaf Variable that requires grad"),
]


@pytest.mark.parametrize("call,exc,match", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(torch)
    with pytest.raises(exc, match=match):
        call(vt)


def per_tensor(m, name, one):
    """vt's foreach op, or on torch's side a per-tensor reference."""
    if m is vt:
        return fn(m, name)
    if one is None:  # addcdiv
        return lambda a, b, c, value: tuple(torch.addcdiv(x, y, z, value=value) for x, y, z in zip(a, b, c))
    return lambda a, *args, **kw: tuple(one(x) for x in a)


GRAD_CASES = {
    "add List alpha": lambda m, a, b: fn(m, "_foreach_add")(a, b, alpha=0.7),
    "sub List alpha": lambda m, a, b: fn(m, "_foreach_sub")(a, b, alpha=-2),
    # torch's own foreach backward fails on these three ("inconsistent range for TensorList output", an
    # IndexError): torch's side is the per-tensor op, so the gradient through the scalar tensor is checked too
    "add Tensor": lambda m, a, b: per_tensor(m, "_foreach_add", lambda x: torch.add(x, b[0].sum(), alpha=1.5))(
        a, b[0].sum(), alpha=1.5),
    "mul Tensor": lambda m, a, b: per_tensor(m, "_foreach_mul", lambda x: x * b[2].sum())(a, b[2].sum()),
    "addcdiv Scalar": lambda m, a, b: per_tensor(m, "_foreach_addcdiv", None)(
        a, b, [y.exp() for y in b], value=-0.4),
    "mul List": lambda m, a, b: fn(m, "_foreach_mul")(a, b),
    # (torch's backward of _foreach_div.Tensor fails for a scalar that requires grad: the scalar is a constant)
    "div Tensor": lambda m, a, b: fn(m, "_foreach_div")(a, b[1].sum().detach()),
    "div ScalarList": lambda m, a, b: fn(m, "_foreach_div")(a, [2.0, -3.0, 0.5]),
    "maximum List": lambda m, a, b: fn(m, "_foreach_maximum")(a, b),
    "clamp_min Scalar": lambda m, a, b: fn(m, "_foreach_clamp_min")(a, 0.9),
    "pow Scalar": lambda m, a, b: fn(m, "_foreach_pow")(a, 2.5),
    "pow List": lambda m, a, b: fn(m, "_foreach_pow")(a, b),
    "pow scalar base": lambda m, a, b: fn(m, "_foreach_pow")(1.7, b),
    "lerp List": lambda m, a, b: fn(m, "_foreach_lerp")(a, b, fn(m, "_foreach_sigmoid")(b)),
    "lerp Scalar": lambda m, a, b: fn(m, "_foreach_lerp")(a, b, 0.3),
    "addcmul ScalarList": lambda m, a, b: fn(m, "_foreach_addcmul")(a, b, a, [0.5, 2.0, -1.0]),
    "sqrt": lambda m, a, b: fn(m, "_foreach_sqrt")(a),
    "exp": lambda m, a, b: fn(m, "_foreach_exp")(b),
    "reciprocal": lambda m, a, b: fn(m, "_foreach_reciprocal")(a),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_gradients(case):
    shapes = [(3, 4), (5,), (2, 1, 3)]

    def f(m, *ts):
        outs = GRAD_CASES[case](m, list(ts[:3]), list(ts[3:]))
        return m.cat([o.reshape(-1) for o in outs])
    check_grads(f, leaves(shapes + shapes, positive=True, seed=3))


def ema_scenario(m, k):
    ema = list(lists(20)[k])
    params = list(lists(21, low=-1, high=1)[k])
    f = (lambda n: fn(m, n))
    for step in range(3):
        decay = 0.9 + 0.01 * step
        f("_foreach_lerp_")(ema, params, 1 - decay)
        f("_foreach_mul_")(ema, decay)
        f("_foreach_add_")(ema, params, alpha=1 - decay)
        f("_foreach_mul_")(ema, m.tensor(0.99, dtype=m.float64))
        f("_foreach_addcdiv_")(ema, params, f("_foreach_add")(f("_foreach_abs")(params), 1e-3), value=-0.01)
        f("_foreach_clamp_max_")(ema, 1.2)
    return ema


def test_ema_idioms():
    assert_same(ema_scenario(vt, 0), ema_scenario(torch, 1))
