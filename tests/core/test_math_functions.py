"""The math functions of vibetensor.torch._math_functions and vt.special against torch: values over wide ranges
with edge values (0, -0, poles, +-inf, NaN) in float32 and float64, float64 gradients, bernoulli/normal
statistically and for reproducibility under a seeded Generator, and the error cases.

Tolerances state the measured worst error against torch on these inputs (in units of the dtype's epsilon where
the functions are computed in float64 and rounded once)."""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch import _math_functions as M
from vibetensor.torch import special as S

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autograd"))
from ag_helpers import check_grads, leaves  # noqa: E402

DTYPES = ["float32", "float64"]
EDGE = [0.0, -0.0, 1.0, 2.0, -1.0, -2.0, -3.0, 0.5, -0.5, -2.5, math.inf, -math.inf, math.nan, 1e-30, -1e-30,
        1e10, 171.0, 172.0, -170.5, 3.0]


def wide(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal(500) * 10, rng.uniform(-50, 50, 500), np.exp(rng.uniform(-30, 6, 300)),
                           EDGE])


def compare(v, t, rtol, atol=0.0):
    """Equal non-finite values (inf of the same sign, NaN where NaN) and |v - t| <= atol + rtol |t| elsewhere."""
    v = v.numpy().astype(np.float64) if hasattr(v, "numpy") else np.asarray(v, np.float64)
    t = t.numpy().astype(np.float64)
    assert v.shape == t.shape
    fin = np.isfinite(t)
    assert np.array_equal(np.isnan(v), np.isnan(t)), (v[np.isnan(v) != np.isnan(t)], t[np.isnan(v) != np.isnan(t)])
    assert np.array_equal(v[np.isinf(t)], t[np.isinf(t)])
    np.testing.assert_allclose(v[fin], t[fin], rtol=rtol, atol=atol)


def pair(values, dtype):
    a = np.asarray(values, dtype=dtype)
    return vt.from_numpy(a.copy()), torch.from_numpy(a.copy())


EPS = {"float32": 2.0 ** -23, "float64": 2.0 ** -52}


# ---------------------------------------------------------------------------------------- special functions
@pytest.mark.parametrize("dtype", DTYPES)
def test_lgamma(dtype):
    v, t = pair(wide(), dtype)
    # measured: 1 ulp (float32); float64 7e-15 * max(|lgamma|, 1) (the reflection's cancellation below 0.5)
    tol = {"float32": 4 * EPS["float32"], "float64": 1e-14}[dtype]
    compare(M.lgamma(v), torch.lgamma(t), rtol=tol, atol=tol)
    assert v.lgamma().dtype == getattr(vt, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_digamma(dtype):
    x = wide()
    x = x[~((x < 0) & (np.abs(x - np.round(x)) < 1e-3))]  # near negative poles torch's own float32 is inaccurate
    x = np.concatenate([x, [-1.0, -2.0, 0.0, -0.0]])
    v, t = pair(x, dtype)
    # measured: 8e-14 rel (float64, at x = -7 + 3e-4 where pi cot(pi x) is 3000), 7e-6 rel (float32: torch's)
    compare(M.digamma(v), torch.digamma(t), rtol={"float32": 1e-5, "float64": 2e-13}[dtype], atol=1e-6 if
            dtype == "float32" else 1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_trigamma(dtype):
    x = wide()
    x = x[~((x <= 0) & (x == np.round(x)))]  # torch returns ~1e32 at the poles (its sin(pi n) != 0); ours is inf
    x = x[np.isfinite(x)].astype(dtype)
    v, t = pair(x, dtype)
    # torch's own trigamma is off by up to 5e-10 (float64) and 5e-3 (float32, near the negative poles), so the
    # reference is mpmath; ours measured 1 ulp (float32) and 2e-15 relative (float64)
    mpmath = pytest.importorskip("mpmath")  # comes with torch (through sympy)

    ref = np.array([float(mpmath.polygamma(1, mpmath.mpf(float(a)))) for a in x]).astype(dtype)
    compare(M.polygamma(1, v), torch.from_numpy(ref), rtol={"float32": 4 * EPS["float32"], "float64": 1e-14}[dtype])
    compare(M.polygamma(1, v), torch.polygamma(1, t), rtol={"float32": 1e-2, "float64": 1e-9}[dtype])
    assert M.polygamma(1, vt.tensor([-2.0, 0.0])).tolist() == [math.inf, math.inf]


@pytest.mark.parametrize("dtype", DTYPES)
def test_erfinv(dtype):
    rng = np.random.default_rng(1)
    y = np.concatenate([rng.uniform(-1, 1, 3000), 1 - np.exp(rng.uniform(-36, 0, 500)),
                        -1 + np.exp(rng.uniform(-36, 0, 100)), [0, -0.0, 1, -1, 1.5, -2, math.nan, 1e-20, -1e-300]])
    v, t = pair(y, dtype)
    out = M.erfinv(v)
    compare(out, torch.erfinv(t), rtol=2 * EPS[dtype], atol=1e-300)  # measured: 1 ulp in both dtypes
    assert signbit_list(M.erfinv(vt.tensor([-0.0]))) == [True]


def signbit_list(x):
    return M.signbit(x).tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_i0(dtype):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-100, 100, 500), rng.standard_normal(300) * 5, EDGE, [700, -700, 710, 88.0,
                                                                                         89.0, 30.0, 30.0001]])
    v, t = pair(x, dtype)
    # measured 3e-7 (float32, torch's Chebyshev fit), 4e-14 (float64) relative; inf past overflow, NaN at +-inf
    compare(M.i0(v), torch.i0(t), rtol={"float32": 5e-7, "float64": 1e-13}[dtype])


def test_mvlgamma():
    v, t = pair(np.random.default_rng(3).uniform(2.0, 20.0, (4, 5)), "float64")
    for p in (1, 2, 3):
        compare(M.mvlgamma(v, p), torch.mvlgamma(t, p), rtol=1e-13)
    # torch documents x > (p - 1) / 2 but checks nothing: below it, the sum of lgammas all the same
    v, t = pair([0.4, 0.2, -0.3], "float64")
    compare(M.mvlgamma(v, 2), torch.mvlgamma(t, 2), rtol=1e-13)
    with pytest.raises(RuntimeError, match="p has to be"):
        M.mvlgamma(v, 0)


def test_polygamma_errors():
    with pytest.raises(RuntimeError, match="negative"):
        M.polygamma(-1, vt.tensor([1.0]))
    with pytest.raises(NotImplementedError):
        M.polygamma(2, vt.tensor([1.0]))


def test_integer_inputs_promote_to_float32():
    x = vt.tensor([1, 2, 3])
    xt = torch.tensor([1, 2, 3])
    for name in ("lgamma", "digamma", "erfinv", "i0", "sinc", "deg2rad", "rad2deg", "logit"):
        out = getattr(M, name)(x)
        assert out.dtype == vt.float32, name
        compare(out, getattr(torch, name)(xt), rtol=1e-6)
    assert M.float_power(x, 2).dtype == vt.float64


# -------------------------------------------------------------------------------------- elementwise
@pytest.mark.parametrize("dtype", DTYPES)
def test_simple_elementwise(dtype):
    v, t = pair(wide(), dtype)
    for name in ("sgn", "sinc", "deg2rad", "rad2deg"):
        compare(getattr(M, name)(v), getattr(torch, name)(t), rtol=EPS[dtype], atol=0)
    assert M.signbit(v).tolist() == torch.signbit(t).tolist()
    neg_nan = vt.tensor([math.nan]).neg()
    assert M.signbit(vt.tensor([-0.0, 0.0, -1.0])).tolist() == [True, False, True]
    assert M.signbit(vt.tensor([-2, 0, 3])).tolist() == [True, False, False]
    assert M.signbit(neg_nan).tolist() == torch.signbit(torch.tensor([math.nan]).neg()).tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_logit(dtype):
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(0, 1, 500), [0, 1, -0.5, 1.5, math.nan, 1e-8, 1 - 1e-7]])
    v, t = pair(x, dtype)
    compare(M.logit(v), torch.logit(t), rtol=2 * EPS[dtype])
    compare(M.logit(v, 1e-3), torch.logit(t, 1e-3), rtol=2 * EPS[dtype])
    compare(v.logit(eps=0.25), t.logit(eps=0.25), rtol=2 * EPS[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_xlogy_copysign_ldexp_heaviside(dtype):
    rng = np.random.default_rng(5)
    a = np.concatenate([rng.standard_normal(40), [0, 0, 0, -0.0, math.nan, 1, math.inf, 2, 0]])
    b = np.concatenate([np.abs(rng.standard_normal(40)), [0, math.nan, -1, 3, 1, math.nan, 2, 0, math.inf]])
    (va, ta), (vb, tb) = pair(a, dtype), pair(b, dtype)
    compare(M.xlogy(va, vb), torch.xlogy(ta, tb), rtol=2 * EPS[dtype])
    compare(M.xlogy(2.0, vb), torch.xlogy(2.0, tb), rtol=2 * EPS[dtype])
    compare(M.xlogy(va, 3.0), torch.xlogy(ta, 3.0), rtol=2 * EPS[dtype])
    compare(M.copysign(va, vb.neg()), torch.copysign(ta, tb.neg()), rtol=0)
    compare(M.copysign(va, -1.5), torch.copysign(ta, -1.5), rtol=0)
    e = np.round(rng.uniform(-5, 5, a.shape))
    ve, te = pair(e, dtype)
    compare(M.ldexp(va, ve), torch.ldexp(ta, te), rtol=EPS[dtype])
    compare(M.heaviside(va, vb), torch.heaviside(ta, tb), rtol=0)
    with pytest.raises(RuntimeError, match="different dtypes"):
        M.heaviside(va, vb.to(vt.float16))


def test_broadcast_and_int_promotion_binary():
    (va, ta), (vb, tb) = leaves([(3, 1), (4,)], positive=True)
    compare(M.xlogy(va, vb).detach(), torch.xlogy(ta, tb).detach(), rtol=1e-15)
    ia, it = vt.tensor([0, 1, 2]), torch.tensor([0, 1, 2])
    for name in ("xlogy", "copysign", "ldexp"):
        out = getattr(M, name)(ia, vt.tensor([2, -3, 1]))
        ref = getattr(torch, name)(it, torch.tensor([2, -3, 1]))
        assert str(out.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1], name
        compare(out, ref, rtol=1e-7)


def test_float_power_and_true_divide():
    v, t = pair(np.random.default_rng(6).uniform(0.1, 3, (3, 4)), "float32")
    for e in (2, 0.5, -1.5):
        out = M.float_power(v, e)
        assert out.dtype == vt.float64
        compare(out, torch.float_power(t, e), rtol=1e-15)
    compare(M.float_power(2, v), torch.float_power(2, t), rtol=1e-15)
    compare(M.float_power(v, v), torch.float_power(t, t), rtol=1e-15)
    compare(M.true_divide(v, 3), torch.true_divide(t, 3), rtol=0)


# ----------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name, positive", [("lgamma", False), ("erfinv", None), ("sinc", False),
                                            ("i0", False), ("deg2rad", False), ("rad2deg", False),
                                            ("logit", None)])
def test_unary_grads(name, positive):
    pairs = leaves([(3, 5)], positive=bool(positive))
    if positive is None:  # (-1, 1) for erfinv, (0, 1) for logit
        v, t = pairs[0]
        a = np.tanh(t.detach().numpy()) if name == "erfinv" else 1 / (1 + np.exp(-t.detach().numpy()))
        pairs = [(vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_())]
    check_grads(lambda m, x: getattr(m, name)(x) if m is torch else getattr(M, name)(x), pairs)


def test_digamma_grads(monkeypatch):
    # torch's trigamma (digamma's derivative) is itself off by up to 5e-10 (see test_trigamma): compare to 1e-8
    import ag_helpers

    monkeypatch.setitem(ag_helpers.TOL, "float64", dict(rtol=1e-8, atol=1e-10))
    check_grads(lambda m, x: m.digamma(x) if m is torch else M.digamma(x), leaves([(3, 5)]))
    check_grads(lambda m, x: (torch.polygamma if m is torch else M.polygamma)(0, x), leaves([(5,)], positive=True))
    x = vt.tensor([0.7, 3.0], dtype=vt.float64).requires_grad_()
    (g,) = vt.autograd.grad(M.lgamma(x).sum(), [x], create_graph=True)  # d2/dx2 lgamma = trigamma
    g.sum().backward()
    compare(x.grad, torch.polygamma(1, torch.tensor([0.7, 3.0], dtype=torch.float64)), rtol=1e-9)


def test_more_grads():
    (va, ta), (vb, tb) = leaves([(3, 4), (3, 4)], positive=True)
    check_grads(lambda m, x, y: (torch.xlogy if m is torch else M.xlogy)(x, y), [(va, ta), (vb, tb)])
    check_grads(lambda m, x: (torch.mvlgamma if m is torch else M.mvlgamma)(x + 2, 3), leaves([(5,)], positive=True))
    check_grads(lambda m, x: (torch.logit if m is torch else M.logit)(x.sigmoid(), 0.2), leaves([(6,)]))
    check_grads(lambda m, x, y: (torch.copysign if m is torch else M.copysign)(x, y), leaves([(2, 3), (3,)], seed=3))
    check_grads(lambda m, x, y: (torch.ldexp if m is torch else M.ldexp)(x, y), leaves([(2, 3), (2, 3)], seed=4))
    check_grads(lambda m, x, y: (torch.float_power if m is torch else M.float_power)(x, y),
                leaves([(4,), (4,)], positive=True))
    check_grads(lambda m, x: (torch.special.log_ndtr if m is torch else S.log_ndtr)(x * 15),
                leaves([(20,)], seed=5))
    check_grads(lambda m, x: (torch.special.ndtri if m is torch else S.ndtri)(x.sigmoid()), leaves([(8,)]))
    check_grads(lambda m, x: (torch.special.ndtr if m is torch else S.ndtr)(x), leaves([(8,)]))


def test_grads_at_edges_are_finite():
    x = vt.tensor([0.0, 1.0, -2.5], dtype=vt.float64).requires_grad_()
    M.sinc(x).sum().backward()
    xt = torch.tensor([0.0, 1.0, -2.5], dtype=torch.float64, requires_grad=True)
    torch.sinc(xt).sum().backward()
    compare(x.grad, xt.grad, rtol=1e-15, atol=1e-15)
    a = vt.tensor([0.0, 0.0, 2.0], dtype=vt.float64).requires_grad_()
    b = vt.tensor([0.0, 1.0, 3.0], dtype=vt.float64).requires_grad_()
    M.xlogy(a, b).sum().backward()
    assert np.isfinite(a.grad.numpy()).all() and a.grad.tolist()[:2] == [0.0, 0.0]
    z = vt.tensor([-50.0, -20.0, 0.0, 40.0], dtype=vt.float64).requires_grad_()
    S.log_ndtr(z).sum().backward()
    zt = torch.tensor([-50.0, -20.0, 0.0, 40.0], dtype=torch.float64, requires_grad=True)
    torch.special.log_ndtr(zt).sum().backward()
    compare(z.grad, zt.grad, rtol=1e-12)


def _edge_grads(fn_v, fn_t, arrays, dtype):
    """Values, first and second derivatives (create_graph) against torch at the given (edge) points."""
    vs = [vt.from_numpy(a.astype(dtype)).requires_grad_() for a in arrays]
    ts = [torch.from_numpy(a.astype(dtype)).requires_grad_() for a in arrays]
    vo, to = fn_v(*vs), fn_t(*ts)
    compare(vo.detach(), to.detach(), rtol=4 * EPS[dtype])
    w = np.linspace(0.5, 1.5, to.numel()).reshape(tuple(to.shape)).astype(dtype)
    vg = vt.autograd.grad((vo * vt.from_numpy(w)).sum(), vs, create_graph=True)
    tg = torch.autograd.grad((to * torch.from_numpy(w)).sum(), ts, create_graph=True)
    for a, b in zip(vg, tg):
        assert tuple(a.shape) == tuple(b.shape)
        compare(a.detach(), b.detach(), rtol=4 * EPS[dtype])
    assert [g.requires_grad for g in vg] == [g.requires_grad for g in tg]
    if not any(g.requires_grad for g in tg):  # the derivative is constant (no second order to compare)
        return
    finite = [np.isfinite(b.detach().numpy()) for b in tg]
    vs2 = vt.autograd.grad(sum((g * vt.from_numpy(f.astype(dtype))).nan_to_num(0.0).sum() for g, f in zip(vg, finite)),
                           vs, allow_unused=True)
    ts2 = torch.autograd.grad(sum((g * torch.from_numpy(f.astype(dtype))).nan_to_num(0.0).sum()
                                  for g, f in zip(tg, finite)), ts, allow_unused=True)
    for a, b in zip(vs2, ts2):
        if b is not None and a is not None:
            compare(a.nan_to_num(0.0, 0.0, 0.0), b.nan_to_num(0.0, 0.0, 0.0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_xlogy_gradients_at_zero_match_torch(dtype):
    """d/dx xlogy(x, y) is log(y) at x == 0 < y (soft targets in a cross entropy differentiate there), 0 where
    x == 0 and y <= 0; d/dy is x / y, NaN at x == y == 0 (torch's)."""
    rng = np.random.default_rng(11)
    x = np.concatenate([np.zeros(5), [1.0, -1.0, 2.0, 0.0], rng.uniform(-1, 1, 6)])
    y = np.concatenate([[0.0, 0.5, -1.0, math.inf, 3.0], [0.0, 0.0, math.nan, math.nan], rng.uniform(0.1, 2, 6)])
    _edge_grads(M.xlogy, torch.xlogy, [x, y], dtype)
    # broadcast operands (the gradients reduce back to each shape), a leaf and a constant
    col, row = np.array([[0.0], [2.0], [0.0]]), np.array([0.5, 3.0, 0.0, 1.0])
    _edge_grads(M.xlogy, torch.xlogy, [col, row], dtype)
    _edge_grads(lambda a: M.xlogy(a, 2.0), lambda a: torch.xlogy(a, 2.0), [x], dtype)
    _edge_grads(lambda b: M.xlogy(0.0, b), lambda b: torch.xlogy(0.0, b), [np.abs(y) + 0.1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_entr_matches_torch(dtype):
    """-x log x, 0 at 0, -inf below 0; its derivative -(1 + log x) is +inf at 0 (torch's)."""
    x = np.concatenate([[0.0, -1.0, math.nan, math.inf, 1.0, 1e-30],
                        np.random.default_rng(12).uniform(0, 3, 10)]).reshape(4, 4)
    _edge_grads(S.entr, torch.special.entr, [x], dtype)
    _edge_grads(lambda a: S.entr(a.t()[1:]), lambda a: torch.special.entr(a.t()[1:]), [x], dtype)
    for vals in ([0, 1, 2], [True, False]):
        out, ref = S.entr(vt.tensor(vals)), torch.special.entr(torch.tensor(vals))
        assert str(out.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
        compare(out, ref, rtol=1e-6)


# --------------------------------------------------------------------------------------- linear algebra
def test_renorm_dist():
    for p, dim, maxnorm in ((2, 0, 1.0), (1, 1, 0.5), (3.0, -1, 2.0), (math.inf, 0, 0.3)):
        check_grads(lambda m, x: (torch.renorm if m is torch else M.renorm)(x, p, dim, maxnorm),
                    leaves([(4, 3, 2)], seed=7))
    for p in (2, 1, 0.5, 3, math.inf, -math.inf, 0):
        pairs = leaves([(3, 4), (4,)], seed=8)
        if p == 0:
            out = M.dist(pairs[0][0], pairs[1][0], p)
            compare(out.detach(), torch.dist(pairs[0][1], pairs[1][1], p).detach(), rtol=0)
            continue
        check_grads(lambda m, x, y: (torch.dist if m is torch else M.dist)(x, y, p), pairs)
    with pytest.raises(RuntimeError, match="maxnorm"):
        M.renorm(vt.ones(2, 2), 2, 0, -1.0)
    with pytest.raises(RuntimeError, match="non-positive"):
        M.renorm(vt.ones(2, 2), 0, 0, 1.0)
    with pytest.raises(RuntimeError, match="at least 2"):
        M.renorm(vt.ones(2), 2, 0, 1.0)


def test_dot_vdot_mv_addmv_trace():
    check_grads(lambda m, x, y: (torch.dot if m is torch else M.dot)(x, y), leaves([(5,), (5,)]))
    check_grads(lambda m, x, y: (torch.vdot if m is torch else M.vdot)(x, y), leaves([(5,), (5,)]))
    check_grads(lambda m, a, x: (torch.mv if m is torch else M.mv)(a, x), leaves([(3, 5), (5,)], noncontig=True))
    for beta, alpha in ((1, 1), (0.5, 2.0), (0, 1)):
        check_grads(lambda m, c, a, x: (torch.addmv if m is torch else M.addmv)(c, a, x, beta=beta, alpha=alpha),
                    leaves([(3,), (3, 5), (5,)]))
    check_grads(lambda m, c, a, x: (torch.addmv if m is torch else M.addmv)(c, a, x), leaves([(1,), (3, 5), (5,)]))
    check_grads(lambda m, a: (torch.trace if m is torch else M.trace)(a), leaves([(3, 5)]))
    assert M.trace(vt.tensor([[1, 2], [3, 4]])).dtype == vt.int64
    assert M.dot(vt.zeros(0), vt.zeros(0)).item() == 0
    with pytest.raises(RuntimeError, match="1D tensors expected"):
        M.dot(vt.ones(2, 2), vt.ones(2))
    with pytest.raises(RuntimeError, match="same number of elements"):
        M.dot(vt.ones(2), vt.ones(3))
    with pytest.raises(RuntimeError, match="same dtype"):
        M.dot(vt.ones(2), vt.ones(2, dtype=vt.float64))
    with pytest.raises(RuntimeError, match="size mismatch"):
        M.mv(vt.ones(2, 3), vt.ones(2))
    with pytest.raises(RuntimeError, match="expected a matrix"):
        M.trace(vt.ones(2, 2, 2))


def test_tensordot_multi_dot_chain_matmul():
    for shapes, dims in ((((2, 3, 4), (3, 4, 5)), 2), (((2, 3, 4), (4, 5)), 1), (((2, 3), (4, 5)), 0),
                         (((2, 3, 4), (4, 3, 5)), ([1, 2], [1, 0])), (((2, 3, 4), (5, 3)), ([-2], [1])),
                         (((3, 4), (4, 3)), [[0, 1], [1, 0]])):
        check_grads(lambda m, a, b: (torch.tensordot if m is torch else M.tensordot)(a, b, dims), leaves(shapes))
    with pytest.raises(RuntimeError, match="contracted dimensions"):
        M.tensordot(vt.ones(2, 3), vt.ones(2, 3), 1)
    check_grads(lambda m, a, b, c: (torch.linalg.multi_dot if m is torch else M.multi_dot)([a, b, c]),
                leaves([(3,), (3, 4), (4, 2)]))
    check_grads(lambda m, a, b, c: (torch.linalg.multi_dot if m is torch else M.multi_dot)([a, b, c]),
                leaves([(2, 3), (3, 4), (4,)]))
    check_grads(lambda m, a, b, c: (torch.chain_matmul if m is torch else M.chain_matmul)(a, b, c),
                leaves([(2, 3), (3, 4), (4, 2)]))
    with pytest.raises(RuntimeError, match="at least 2"):
        M.multi_dot([vt.ones(2, 2)])
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        M.multi_dot([vt.ones(2, 3), vt.ones(2, 2)])


# ---------------------------------------------------------------------------------------------- special
@pytest.mark.parametrize("dtype", DTYPES)
def test_special_namespace(dtype):
    v, t = pair(wide(), dtype)
    rng = np.random.default_rng(9)
    for name in ("erf", "erfc", "expit", "log1p", "expm1", "exp2", "sinc", "i0", "digamma", "psi", "gammaln"):
        x_v, x_t = (v, t) if name not in ("log1p",) else pair(np.abs(wide()), dtype)
        tol = {"i0": 5e-7 if dtype == "float32" else 1e-13, "gammaln": 1e-14 if dtype == "float64" else 4 * EPS[dtype]
               }.get(name, 4 * EPS[dtype])
        if name in ("digamma", "psi"):  # values near the negative poles are checked in test_digamma
            keep = ~((wide() < 0) & (np.abs(wide() - np.round(wide())) < 1e-3))
            x_v, x_t = pair(wide()[keep], dtype)
            tol = {"float32": 1e-5, "float64": 2e-13}[dtype]
        atol = tol * 1e-6
        if name == "gammaln":
            atol = tol  # near its roots 1 and 2
        compare(getattr(S, name)(x_v), getattr(torch.special, name)(x_t), rtol=tol, atol=atol)
    p = np.concatenate([np.exp(rng.uniform(-700 if dtype == "float64" else -87, 0, 300)), rng.uniform(0, 1, 300),
                        [0, 1, 0.5, -0.5, 2, math.nan]])
    compare(S.ndtri(vt.from_numpy(p.astype(dtype))), torch.special.ndtri(torch.from_numpy(p.astype(dtype))),
            rtol=4 * EPS[dtype])  # measured: 4.5e-16 / 1 ulp, down to p = 1e-300
    x = np.concatenate([rng.uniform(-100, 100, 500), rng.standard_normal(500) * 5, [-1e5, 1e5, 0, -20, -20.001,
                                                                                    math.inf, -math.inf, math.nan]])
    compare(S.log_ndtr(vt.from_numpy(x.astype(dtype))), torch.special.log_ndtr(torch.from_numpy(x.astype(dtype))),
            rtol={"float32": 2e-5, "float64": 1e-12}[dtype], atol=1e-300)  # torch's float32: 1e-5 above x = 5
    a = rng.uniform(0, 1, (3, 4)).astype(dtype)
    (va, ta) = vt.from_numpy(a.copy()), torch.from_numpy(a.copy())
    compare(S.logit(va), torch.special.logit(ta), rtol=2 * EPS[dtype])
    compare(S.xlogy(va, va), torch.special.xlogy(ta, ta), rtol=2 * EPS[dtype])
    compare(S.erfinv(va), torch.special.erfinv(ta), rtol=2 * EPS[dtype])
    compare(S.softmax(va, 1), torch.special.softmax(ta, 1), rtol=4 * EPS[dtype])
    compare(S.log_softmax(va, 0), torch.special.log_softmax(ta, 0), rtol=4 * EPS[dtype])
    compare(S.logsumexp(va, 1), torch.special.logsumexp(ta, 1), rtol=4 * EPS[dtype])
    compare(S.round(va * 10, decimals=1), torch.special.round(ta * 10, decimals=1), rtol=EPS[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_ndtr(dtype):
    mpmath = pytest.importorskip("mpmath")  # comes with torch (through sympy)

    rng = np.random.default_rng(12)
    x = np.concatenate([rng.uniform(-40, 10, 300), rng.standard_normal(300) * 3, [0, -0.0, math.inf, -math.inf,
                                                                                  math.nan, -38.0]]).astype(dtype)
    v, t = pair(x, dtype)
    out = S.ndtr(v)
    # torch's 0.5 (1 + erf(x / sqrt 2)) is accurate only to an ulp of 1 in the lower tail (measured 9e-5 relative
    # at x = -7.2 in float64): so mpmath is the reference. Ours is within 4 eps (1 + x^2) relative: the rounding of
    # x / sqrt 2 alone moves erfc by 2 x^2 ulps in the tail
    ref = np.array([float(mpmath.ncdf(mpmath.mpf(float(a)))) if np.isfinite(a) else np.nan for a in x])
    fin = np.isfinite(x)
    got = out.numpy().astype(np.float64)[fin]
    want = ref[fin].astype(dtype).astype(np.float64)
    bound = 4 * EPS[dtype] * (1 + x[fin].astype(np.float64) ** 2) * np.abs(want) + 1e-300
    assert (np.abs(got - want) <= bound).all()
    compare(out, torch.special.ndtr(t), rtol=4 * EPS[dtype], atol=EPS[dtype])


# ---------------------------------------------------------------------------------------------- sampling
def test_bernoulli_statistics_and_generator():
    p = vt.full((200_000,), 0.3)
    draws = M.bernoulli(p)
    assert draws.dtype == vt.float32 and set(np.unique(draws.numpy())) <= {0.0, 1.0}
    assert abs(draws.mean().item() - 0.3) < 5 * math.sqrt(0.3 * 0.7 / 200_000)
    probs = vt.tensor([0.0, 1.0] * 50, dtype=vt.float64)
    assert M.bernoulli(probs).tolist() == probs.tolist()
    x = vt.zeros(100_000)
    frac = M.bernoulli(x, 0.75).mean().item()
    assert abs(frac - 0.75) < 5 * math.sqrt(0.75 * 0.25 / 100_000)
    g1, g2 = vt.Generator().manual_seed(7), vt.Generator().manual_seed(7)
    a = M.bernoulli(vt.full((64,), 0.5), generator=g1)
    vt.rand(10)  # the global stream's draws do not move a Generator's
    b = M.bernoulli(vt.full((64,), 0.5), generator=g2)
    assert a.tolist() == b.tolist()
    assert M.bernoulli(vt.full((64,), 0.5), generator=g1).tolist() != a.tolist()
    assert vt.full((4,), 0.5).bernoulli(generator=vt.Generator().manual_seed(3)).tolist() == \
        M.bernoulli(vt.full((4,), 0.5), generator=vt.Generator().manual_seed(3)).tolist()
    with pytest.raises(RuntimeError, match="p_in"):
        M.bernoulli(vt.tensor([1.5]))
    with pytest.raises(RuntimeError, match=r"\[0, 1\]"):
        M.bernoulli(vt.zeros(3), 1.5)


def test_normal_overloads_statistics_and_generator():
    n = 200_000
    z = M.normal(2.0, 3.0, size=(n,))
    assert tuple(z.shape) == (n,) and z.dtype == vt.float32
    assert abs(z.mean().item() - 2.0) < 5 * 3 / math.sqrt(n) and abs(z.std().item() - 3.0) < 0.05
    mean = vt.full((n,), -1.0, dtype=vt.float64)
    z = M.normal(mean, 0.5)
    assert z.dtype == vt.float64 and abs(z.mean().item() + 1) < 5 * 0.5 / math.sqrt(n)
    z = M.normal(1.0, vt.full((n,), 2.0))
    assert abs(z.std().item() - 2.0) < 0.05 and abs(z.mean().item() - 1) < 5 * 2 / math.sqrt(n)
    z = M.normal(vt.zeros(n, 1), vt.tensor([1.0, 4.0]))  # broadcasts like torch
    assert tuple(z.shape) == (n, 2)
    sd = z.std(0).tolist()
    assert abs(sd[0] - 1) < 0.02 and abs(sd[1] - 4) < 0.08
    assert tuple(torch.normal(torch.zeros(n, 1), torch.tensor([1.0, 4.0])).shape) == (n, 2)
    for draw in (lambda g: M.normal(0.0, 1.0, (5,), generator=g), lambda g: M.normal(vt.zeros(5), 1.0, generator=g),
                 lambda g: M.normal(vt.zeros(5), vt.ones(5), generator=g), lambda g: M.normal(0.0, vt.ones(5),
                                                                                             generator=g)):
        a = draw(vt.Generator().manual_seed(11))
        vt.randn(3)
        assert a.tolist() == draw(vt.Generator().manual_seed(11)).tolist()
    out = vt.empty(4)
    assert M.normal(0.0, 1.0, (4,), out=out) is out
    with pytest.raises(RuntimeError, match="std >= 0"):
        M.normal(vt.zeros(3), -1.0)
    with pytest.raises(RuntimeError, match="std >= 0"):
        M.normal(0.0, vt.tensor([1.0, -1.0]))
    with pytest.raises(TypeError, match="size"):
        M.normal(0.0, 1.0)
    # as torch's: the draws require grad and give mean and std zero gradients
    for mod, m, s in ((vt, vt.zeros(3, dtype=vt.float64), vt.ones(3, dtype=vt.float64)),
                      (torch, torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))):
        m.requires_grad_()
        s.requires_grad_()
        (M.normal if mod is vt else torch.normal)(m, s).sum().backward()
        assert m.grad.tolist() == [0.0] * 3 and s.grad.tolist() == [0.0] * 3
    pr = vt.full((3,), 0.5, dtype=vt.float64).requires_grad_()
    M.bernoulli(pr).sum().backward()
    assert pr.grad.tolist() == [0.0] * 3


# -------------------------------------------------------------------------------------- tensor methods
def test_tensor_methods():
    v, t = pair(np.random.default_rng(10).uniform(0.1, 0.9, (3, 3)), "float64")
    for name in ("sgn", "signbit", "logit", "erfinv", "lgamma", "digamma", "i0", "sinc", "deg2rad", "rad2deg",
                 "trace"):
        compare(getattr(v, name)(), getattr(t, name)(), rtol=1e-13)
    compare(v.polygamma(1), t.polygamma(1), rtol=1e-9)  # torch's trigamma: 5e-10
    compare(v.xlogy(v), t.xlogy(t), rtol=1e-15)
    compare(v.mv(v[0]), t.mv(t[0]), rtol=1e-15)
    compare(v.renorm(2, 0, 0.5), t.renorm(2, 0, 0.5), rtol=1e-15)
    compare(v.dist(v * 2), t.dist(t * 2), rtol=1e-15)
    w = v.clone()
    w.lgamma_()
    compare(w, t.lgamma(), rtol=1e-14)


def test_empty_and_broadcast():
    e, et = vt.zeros(0, 3, dtype=vt.float64), torch.zeros(0, 3, dtype=torch.float64)
    for name in ("lgamma", "digamma", "erfinv", "i0", "sinc", "logit", "sgn", "signbit"):
        assert tuple(getattr(M, name)(e).shape) == tuple(getattr(torch, name)(et).shape) == (0, 3)
    assert M.dist(vt.zeros(0), vt.zeros(0)).item() == torch.dist(torch.zeros(0), torch.zeros(0)).item() == 0
    assert tuple(M.bernoulli(vt.zeros(0)).shape) == (0,)
    assert tuple(M.normal(vt.zeros(0, 2), 1.0).shape) == (0, 2)
    assert tuple(M.tensordot(vt.zeros(0, 3), vt.zeros(3, 4), 1).shape) == (0, 4)
    v, t = pair([[0.0], [1.0], [-2.0]], "float32")
    w, u = pair([5.0, 6.0], "float32")
    compare(M.heaviside(v, w), torch.heaviside(t, u), rtol=0)
    compare(M.xlogy(v, w), torch.xlogy(t, u), rtol=1e-7)
    compare(M.copysign(w, v), torch.copysign(u, t), rtol=0)


def test_public_names():
    x = vt.tensor([0.25, 0.5], dtype=vt.float64)
    xt = torch.tensor([0.25, 0.5], dtype=torch.float64)
    for name in ("sgn", "signbit", "logit", "erfinv", "lgamma", "digamma", "i0", "sinc", "deg2rad", "rad2deg"):
        compare(getattr(vt, name)(x), getattr(torch, name)(xt), rtol=1e-13)
    for name in ("xlogy", "copysign", "ldexp", "float_power", "heaviside", "dot", "vdot", "dist"):
        compare(getattr(vt, name)(x, x), getattr(torch, name)(xt, xt), rtol=1e-13)
    compare(vt.polygamma(1, x), torch.polygamma(1, xt), rtol=1e-9)
    compare(vt.mvlgamma(x + 1, 2), torch.mvlgamma(xt + 1, 2), rtol=1e-13)
    compare(vt.renorm(x.reshape(1, 2), 2, 0, 0.1), torch.renorm(xt.reshape(1, 2), 2, 0, 0.1), rtol=1e-13)
    a, at = x.reshape(2, 1) * x, xt.reshape(2, 1) * xt
    compare(vt.mv(a, x), torch.mv(at, xt), rtol=1e-15)
    compare(vt.addmv(x, a, x, alpha=2), torch.addmv(xt, at, xt, alpha=2), rtol=1e-15)
    compare(vt.trace(a), torch.trace(at), rtol=1e-15)
    compare(vt.tensordot(a, a, 1), torch.tensordot(at, at, 1), rtol=1e-15)
    compare(vt.chain_matmul(a, a, a), torch.linalg.multi_dot([at, at, at]), rtol=1e-15)
    compare(vt.linalg.multi_dot([a, a]), torch.linalg.multi_dot([at, at]), rtol=1e-15)
    assert tuple(vt.normal(0.0, 1.0, (2, 3)).shape) == (2, 3) and tuple(vt.bernoulli(x).shape) == (2,)
    for name in ("erf", "erfc", "erfinv", "expit", "logit", "gammaln", "digamma", "psi", "sinc", "i0", "log1p",
                 "expm1", "exp2", "ndtr", "ndtri", "log_ndtr"):
        compare(getattr(vt.special, name)(x), getattr(torch.special, name)(xt), rtol=1e-13)
    compare(vt.special.xlogy(x, x), torch.special.xlogy(xt, xt), rtol=1e-15)
    for name in ("softmax", "log_softmax", "logsumexp"):
        compare(getattr(vt.special, name)(x, 0), getattr(torch.special, name)(xt, 0), rtol=1e-15)
    compare(vt.special.round(x), torch.special.round(xt), rtol=0)


def test_special_multigammaln_matches_torch():
    x = np.array([1.6, 2.5, 7.25])
    v, t = S.multigammaln(vt.from_numpy(x), 3), torch.special.multigammaln(torch.from_numpy(x), 3)
    compare(v, t, rtol=1e-12)
    check_grads(lambda m, a: (torch.special.multigammaln if m is torch else S.multigammaln)(a + 2, 2),
                leaves([(4,)], positive=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_xlog1py_matches_torch(dtype):
    """x log1p(y), 0 at x == 0; d/dx = log1p(y) (0 where x == 0 and y <= -1), d/dy = x / (1 + y)."""
    x = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 2.0, 0.0, -1.5, 0.5])
    y = np.array([-1.0, 0.5, -2.0, -1.0, math.nan, 3.0, math.inf, 0.25, -0.5])
    _edge_grads(S.xlog1py, torch.special.xlog1py, [x, y], dtype)
    _edge_grads(S.xlog1py, torch.special.xlog1py, [np.array([[0.0], [2.0]]), np.array([0.5, 3.0, -0.5])], dtype)
    for a, b in ((vt.tensor([0, 1]), 2), (2.0, vt.tensor([0.5])), (vt.tensor([1, 2]), vt.tensor([1, 2]))):
        ta = torch.tensor(a.tolist()) if isinstance(a, vt.Tensor) else a
        tb = torch.tensor(b.tolist()) if isinstance(b, vt.Tensor) else b
        out, ref = S.xlog1py(a, b), torch.special.xlog1py(ta, tb)
        assert str(out.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
        compare(out, ref, rtol=1e-6)
