"""vt.linalg singular-value functions against torch: svd / svdvals / torch.svd (reconstruction, orthogonality and
S, since U / V signs are arbitrary), pinv, matrix_rank, cond, matrix_power, matrix_exp, cross, vecdot: values on
random batched tall / wide / square inputs (float64 tight, float32 loose), rank-deficient inputs, float64
gradients and the error cases."""
import math
import os
import sys

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autograd"))
from ag_helpers import check_grads  # noqa: E402

TOL = {"float64": dict(rtol=1e-10, atol=1e-11), "float32": dict(rtol=1e-4, atol=1e-5)}
SHAPES = [(1, 1), (4, 4), (5, 3), (3, 5), (2, 6, 4), (2, 3, 4, 7), (7, 1), (1, 6), (3, 5, 5)]


def rand(shape, dtype="float64", seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def lowrank(shape, r, seed=2):
    rng = np.random.default_rng(seed)
    *b, m, n = shape
    return rng.standard_normal((*b, m, r)) @ rng.standard_normal((*b, r, n))


def pair(a, grad=False):
    v, t = vt.from_numpy(a.copy()), torch.from_numpy(a.copy())
    if grad:
        v, t = v.requires_grad_(), t.requires_grad_()
    return v, t


def close(v, t, dtype="float64"):
    np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), **TOL[dtype])


def orthonormal_cols(Q, dtype):
    q = Q.numpy().astype("float64")
    k = q.shape[-1]
    np.testing.assert_allclose(np.swapaxes(q, -1, -2) @ q, np.broadcast_to(np.eye(k), q.shape[:-2] + (k, k)),
                               atol=1e-12 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("full", [True, False])
def test_svd_values(shape, dtype, full):
    a = rand(shape, dtype)
    v, t = pair(a)
    U, S, Vh = vt.linalg.svd(v, full_matrices=full)
    Ut, St, Vht = torch.linalg.svd(t, full_matrices=full)
    assert U.shape == Ut.shape and S.shape == St.shape and Vh.shape == Vht.shape
    assert U.dtype == S.dtype == Vh.dtype == v.dtype
    # S to ~1e-12 relative of the largest (float64)
    smax = St.numpy().max()
    np.testing.assert_allclose(S.numpy(), St.numpy(), atol=(1e-13 if dtype == "float64" else 1e-5) * smax, rtol=0)
    assert np.all(np.diff(S.numpy(), axis=-1) <= 0)
    orthonormal_cols(U, dtype)
    orthonormal_cols(Vh.transpose(-2, -1).contiguous(), dtype)
    k = S.shape[-1]
    rec = (U.numpy()[..., :k] * S.numpy()[..., None, :]) @ Vh.numpy()[..., :k, :]
    np.testing.assert_allclose(rec, a, atol=1e-12 if dtype == "float64" else 1e-5)


def test_svd_noncontiguous_and_relative_accuracy():
    # graded singular values 1 .. 1e-9: one-sided Jacobi keeps each to high relative accuracy
    rng = np.random.default_rng(3)
    Q1, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    Q2, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    s = np.logspace(0, -9, 6)
    a = (Q1 * s) @ Q2.T
    v = vt.from_numpy(np.ascontiguousarray(a.T)).transpose(0, 1)
    assert not v.is_contiguous()
    S = vt.linalg.svdvals(v).numpy()
    np.testing.assert_allclose(S, torch.linalg.svdvals(torch.from_numpy(a)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(S, s, rtol=1e-6)


@pytest.mark.parametrize("shape", [(6, 5), (5, 6), (2, 4, 4), (7, 3)])
def test_svd_rank_deficient(shape):
    a = lowrank(shape, 2)
    for full in (True, False):
        U, S, Vh = vt.linalg.svd(vt.from_numpy(a.copy()), full_matrices=full)
        np.testing.assert_allclose(S.numpy(), torch.linalg.svdvals(torch.from_numpy(a)).numpy(), atol=1e-12)
        orthonormal_cols(U, "float64")
        orthonormal_cols(Vh.transpose(-2, -1).contiguous(), "float64")
        k = S.shape[-1]
        rec = (U.numpy()[..., :k] * S.numpy()[..., None, :]) @ Vh.numpy()[..., :k, :]
        np.testing.assert_allclose(rec, a, atol=1e-12)
    z = np.zeros((3, 4))
    U, S, Vh = vt.linalg.svd(vt.from_numpy(z))
    assert np.all(S.numpy() == 0)
    orthonormal_cols(U, "float64")


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 0)])
def test_svd_empty(shape):
    a = np.zeros(shape)
    for full in (True, False):
        got = vt.linalg.svd(vt.from_numpy(a), full_matrices=full)
        exp = torch.linalg.svd(torch.from_numpy(a), full_matrices=full)
        for g, e in zip(got, exp):
            assert g.shape == e.shape
    assert vt.linalg.svdvals(vt.from_numpy(a)).shape == torch.linalg.svdvals(torch.from_numpy(a)).shape


@pytest.mark.parametrize("some", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4)])
def test_torch_svd(shape, some):
    a = rand(shape)
    U, S, V = vt.svd(vt.from_numpy(a.copy()), some=some)
    Ut, St, Vt_ = torch.svd(torch.from_numpy(a), some=some)
    assert U.shape == Ut.shape and V.shape == Vt_.shape
    close(S, St)
    k = S.shape[-1]
    rec = (U.numpy()[..., :k] * S.numpy()[..., None, :]) @ np.swapaxes(V.numpy()[..., :k], -1, -2)
    np.testing.assert_allclose(rec, a, atol=1e-12)
    U0, S0, V0 = vt.svd(vt.from_numpy(a.copy()), compute_uv=False)
    Ut0, St0, Vt0 = torch.svd(torch.from_numpy(a), compute_uv=False)
    assert U0.shape == Ut0.shape and V0.shape == Vt0.shape and not U0.numpy().any()
    close(S0, St0)


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 4, 3)])
def test_svd_grads(shape):
    a = rand(shape, seed=7)
    check_grads(lambda m, x: m.linalg.svdvals(x), [pair(a, True)])
    check_grads(lambda m, x: m.linalg.svd(x, full_matrices=False).S, [pair(a, True)])
    # U and V are defined up to a joint column sign: |U|, |Vh| and U diag(S) Vh-like products are gauge-invariant
    check_grads(lambda m, x: m.linalg.svd(x, full_matrices=False).U.abs(), [pair(a, True)])
    check_grads(lambda m, x: m.linalg.svd(x, full_matrices=False).Vh.abs(), [pair(a, True)])

    def mix(m, x):
        U, S, Vh = m.linalg.svd(x, full_matrices=False)
        return (U * S.unsqueeze(-2).sqrt()) @ Vh + S.sum()  # joint column signs cancel in U Vh
    check_grads(mix, [pair(a, True)])
    check_grads(lambda m, x: m.svd(x).V.abs(), [pair(a, True)])


def test_svd_grads_square_full():
    a = rand((4, 4), seed=8)
    check_grads(lambda m, x: m.linalg.svd(x, full_matrices=True).U.abs(), [pair(a, True)])


def test_svd_errors():
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        vt.linalg.svd(vt.ones(3, dtype=vt.float64))
    with pytest.raises(RuntimeError, match="floating point"):
        vt.linalg.svd(vt.ones(3, 3, dtype=vt.int64))
    with pytest.raises(RuntimeError, match="floating point"):
        vt.linalg.svdvals(vt.ones(3, 3, dtype=vt.int64))


# ---- pinv / matrix_rank ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 6, 4), (1, 1)])
def test_pinv(shape, dtype):
    a = rand(shape, dtype, seed=4)
    tol = TOL[dtype] if dtype == "float64" else dict(rtol=1e-3, atol=1e-4)
    v, t = pair(a)
    np.testing.assert_allclose(vt.linalg.pinv(v).numpy(), torch.linalg.pinv(t).numpy(), **tol)
    lr = lowrank(shape, 1, seed=5).astype(dtype)
    v, t = pair(lr)
    np.testing.assert_allclose(vt.linalg.pinv(v).numpy(), torch.linalg.pinv(t).numpy(), **tol)


def test_pinv_options():
    a = lowrank((2, 5, 4), 3, seed=6) + 1e-6 * rand((2, 5, 4))
    v, t = pair(a)
    for kw in [dict(rtol=1e-3), dict(atol=1e-3), dict(atol=1e-3, rtol=0.5), dict(rcond=1e-3), dict(atol=0.0),
               dict(atol=vt.tensor([1e-3, 10.0], dtype=vt.float64))]:
        tkw = {k: (torch.from_numpy(x.numpy()) if isinstance(x, vt.Tensor) else x) for k, x in kw.items()}
        if "rcond" in tkw:
            tkw = dict(rtol=tkw.pop("rcond"))
        # s_min ~ 1e-6 when kept: pinv is ~1e6 in size, so compare relatively
        np.testing.assert_allclose(vt.linalg.pinv(v, **kw).numpy(), torch.linalg.pinv(t, **tkw).numpy(), rtol=1e-7,
                                   atol=1e-9, err_msg=str(kw))
    s = rand((3, 4, 4))
    s = s + np.swapaxes(s, -1, -2)
    s[0] = lowrank((4, 2), 2, seed=1) @ lowrank((4, 2), 2, seed=1).T
    v, t = pair(s)
    close(vt.linalg.pinv(v, hermitian=True), torch.linalg.pinv(t, hermitian=True))
    with pytest.raises(RuntimeError):
        vt.linalg.pinv(v, rtol=1e-3, rcond=1e-3)
    with pytest.raises(RuntimeError, match="square"):
        vt.linalg.pinv(vt.ones(3, 4, dtype=vt.float64), hermitian=True)
    assert vt.linalg.pinv(vt.zeros(0, 3, dtype=vt.float64)).shape == torch.linalg.pinv(torch.zeros(0, 3)).shape


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_pinv_grads(shape):
    a = rand(shape, seed=9)
    check_grads(lambda m, x: m.linalg.pinv(x), [pair(a, True)])
    s = rand((4, 4), seed=10)
    s = s + s.T
    check_grads(lambda m, x: m.linalg.pinv(x + x.transpose(-2, -1), hermitian=True), [pair(s, True)])


def test_matrix_rank():
    for shape, r in [((5, 4), 2), ((4, 6), 3), ((3, 5, 5), 1), ((4, 4), 4), ((1, 1), 1)]:
        a = lowrank(shape, r)
        v, t = pair(a)
        got, exp = vt.linalg.matrix_rank(v), torch.linalg.matrix_rank(t)
        assert got.dtype == vt.int64 and np.array_equal(got.numpy(), exp.numpy())
        assert int(got.reshape(-1)[0]) == r
    a = np.diag([1.0, 1e-2, 1e-5, 0.0])
    v, t = pair(a)
    for kw in [dict(tol=1e-3), dict(atol=1e-6), dict(rtol=1e-3), dict(atol=1e-1, rtol=1e-6), dict(hermitian=True),
               dict(hermitian=True, atol=1e-3)]:
        assert int(vt.linalg.matrix_rank(v, **kw)) == int(torch.linalg.matrix_rank(t, **kw)), kw
    assert vt.linalg.matrix_rank(vt.zeros(2, 0, 3, dtype=vt.float64)).shape == (2,)
    with pytest.raises(RuntimeError):
        vt.linalg.matrix_rank(v, tol=1e-3, atol=1e-3)
    with pytest.raises(RuntimeError, match="floating point"):
        vt.linalg.matrix_rank(vt.ones(3, 3, dtype=vt.int64))


# ---- cond / matrix_power / matrix_exp --------------------------------------------------------------------------

@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", 1, -1, math.inf, -math.inf])
def test_cond(p):
    a = rand((3, 4, 4), seed=11)
    v, t = pair(a)
    close(vt.linalg.cond(v, p), torch.linalg.cond(t, p))
    v, t = pair(a, True)
    if p in (None, 2, -2, "nuc"):
        check_grads(lambda m, x: m.linalg.cond(x, p), [(v, t)])
    else:  # torch's own cond backward fails for these p (an in-place write into inv's output): compare to its parts
        check_grads(lambda m, x: m.linalg.cond(x, p) if m is vt else
                    m.linalg.matrix_norm(x, p) * m.linalg.matrix_norm(m.linalg.inv(x), p), [(v, t)])
    if p in (None, 2, -2):
        r = rand((2, 5, 3))
        close(vt.linalg.cond(vt.from_numpy(r), p), torch.linalg.cond(torch.from_numpy(r), p))


@pytest.mark.parametrize("p", [None, 2, "fro", "nuc", 1, -1, math.inf])
def test_cond_singular(p):
    a = rand((3, 4, 4), seed=20)
    a[0] = 0.0
    a[1, :, 2] = a[1, :, 0]  # a singular element with nonzero norm; exact zero pivot only for the zero matrix
    a[1, 3] = 0.0
    v, t = pair(a)
    got, exp = vt.linalg.cond(v, p).numpy(), torch.linalg.cond(t, p).numpy()
    if p in (None, 2):  # s_min of element 1 is exactly 0 in LAPACK, at rounding level here: a huge cond
        assert got[1] > 1e14
        got, exp = got[[0, 2]], exp[[0, 2]]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(exp))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(exp))
    fin = np.isfinite(exp)
    np.testing.assert_allclose(got[fin & (exp < 1e10)], exp[fin & (exp < 1e10)], rtol=1e-9)


def test_pinverse():
    a = lowrank((2, 5, 4), 2)
    v, t = pair(a)
    close(vt.pinverse(v), torch.pinverse(t))
    close(vt.pinverse(v, 1e-2), torch.pinverse(t, 1e-2))


def test_cond_errors():
    with pytest.raises(RuntimeError, match="square"):
        vt.linalg.cond(vt.ones(3, 4, dtype=vt.float64), "fro")
    with pytest.raises(RuntimeError):
        vt.linalg.cond(vt.ones(3, 3, dtype=vt.float64), 3)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, -1, -3])
def test_matrix_power(n):
    a = rand((2, 4, 4), seed=12) + 3 * np.eye(4)
    a = a / 3
    v, t = pair(a)
    close(vt.linalg.matrix_power(v, n), torch.linalg.matrix_power(t, n))
    close(vt.matrix_power(v, n), torch.matrix_power(t, n))
    if n:
        check_grads(lambda m, x: m.linalg.matrix_power(x, n), [pair(a, True)])
    f = rand((4, 4), "float32")
    np.testing.assert_allclose(vt.linalg.matrix_power(vt.from_numpy(f), 2).numpy(),
                               torch.linalg.matrix_power(torch.from_numpy(f), 2).numpy(), rtol=1e-4, atol=1e-4)


def test_matrix_power_errors():
    with pytest.raises(RuntimeError, match="square"):
        vt.linalg.matrix_power(vt.ones(3, 4, dtype=vt.float64), 2)
    with pytest.raises(TypeError):
        vt.linalg.matrix_power(vt.ones(3, 3, dtype=vt.float64), 1.5)
    assert vt.linalg.matrix_power(vt.ones(2, 3, 3, dtype=vt.float64), 0).shape == (2, 3, 3)


@pytest.mark.parametrize("scale", [0.0, 0.1, 1.0, 5.0, 30.0])
@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 5, 5), (2, 1, 4, 4)])
def test_matrix_exp(shape, scale):
    a = rand(shape, seed=13) * scale
    v, t = pair(a)
    exp = torch.linalg.matrix_exp(t)
    np.testing.assert_allclose(vt.linalg.matrix_exp(v).numpy(), exp.numpy(), rtol=1e-10,
                               atol=1e-12 * max(1.0, np.abs(exp.numpy()).max()))
    np.testing.assert_allclose(vt.matrix_exp(v).numpy(), torch.matrix_exp(t).numpy(), rtol=1e-10,
                               atol=1e-12 * max(1.0, np.abs(exp.numpy()).max()))
    if scale > 5:
        return  # exp of these overflows float32's range
    f = a.astype("float32")
    ef = torch.linalg.matrix_exp(torch.from_numpy(f)).numpy()
    np.testing.assert_allclose(vt.linalg.matrix_exp(vt.from_numpy(f)).numpy(), ef, rtol=1e-3,
                               atol=1e-4 * max(1.0, np.abs(ef).max()))


@pytest.mark.parametrize("scale", [0.3, 3.0, 20.0])
def test_matrix_exp_grads(scale):
    a = rand((2, 4, 4), seed=14) * scale
    v, t = pair(a, True)
    out_t = torch.linalg.matrix_exp(t)
    out_v = vt.linalg.matrix_exp(v)
    g = rand((2, 4, 4), seed=15)
    out_t.backward(torch.from_numpy(g.copy()))
    out_v.backward(vt.from_numpy(g.copy()))
    np.testing.assert_allclose(v.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10 * np.abs(t.grad.numpy()).max())


def test_matrix_exp_errors():
    with pytest.raises(RuntimeError, match="square"):
        vt.linalg.matrix_exp(vt.ones(3, 4, dtype=vt.float64))
    assert vt.linalg.matrix_exp(vt.zeros(0, 0, dtype=vt.float64)).shape == (0, 0)


# ---- cross / vecdot --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sa,sb,dim", [((3,), (3,), -1), ((4, 3), (4, 3), -1), ((2, 1, 3), (5, 3), -1),
                                       ((3, 4), (3, 1), 0), ((2, 3, 5), (2, 3, 5), 1)])
def test_cross(sa, sb, dim):
    a, b = rand(sa, seed=16), rand(sb, seed=17)
    if len(sa) != len(sb):
        b = b.reshape((1,) * (len(sa) - len(sb)) + sb)
    check_grads(lambda m, x, y: m.linalg.cross(x, y, dim=dim), [pair(a, True), pair(b, True)])


def test_cross_errors():
    with pytest.raises(RuntimeError, match="length 3"):
        vt.linalg.cross(vt.ones(4, dtype=vt.float64), vt.ones(4, dtype=vt.float64))
    with pytest.raises(RuntimeError):
        vt.linalg.cross(vt.ones(2, 3, dtype=vt.float64), vt.ones(3, dtype=vt.float64))


@pytest.mark.parametrize("sa,sb,dim", [((5,), (5,), -1), ((4, 3), (4, 3), -1), ((2, 1, 3), (5, 3), -1),
                                       ((3, 4), (3, 1), 0), ((0, 3), (0, 3), 0)])
def test_vecdot(sa, sb, dim):
    a, b = rand(sa, seed=18), rand(sb, seed=19)
    check_grads(lambda m, x, y: m.linalg.vecdot(x, y, dim=dim), [pair(a, True), pair(b, True)])
    with pytest.raises(RuntimeError, match="dtype"):
        vt.linalg.vecdot(vt.ones(3, dtype=vt.float64), vt.ones(3, dtype=vt.float32))


def test_out_arguments():
    a = rand((5, 3))
    v, t = pair(a)
    S = vt.empty(0, dtype=vt.float64)
    r = vt.linalg.svdvals(v, out=S)
    assert r is S
    close(S, torch.linalg.svdvals(t))
    outs = (vt.empty(5, 3, dtype=vt.float64), vt.empty(3, dtype=vt.float64), vt.empty(3, 3, dtype=vt.float64))
    U, S2, Vh = vt.linalg.svd(v, full_matrices=False, out=outs)
    assert U is outs[0] and S2 is outs[1] and Vh is outs[2]
    close(S2, torch.linalg.svdvals(t))
    P = vt.empty(3, 5, dtype=vt.float64)
    vt.linalg.pinv(v, out=P)
    close(P, torch.linalg.pinv(t))
    R = vt.empty((), dtype=vt.int64)
    vt.linalg.matrix_rank(v, out=R)
    assert int(R) == 3
    M = vt.empty(4, 4, dtype=vt.float64)
    sq = rand((4, 4))
    vt.linalg.matrix_power(vt.from_numpy(sq), 3, out=M)
    close(M, torch.linalg.matrix_power(torch.from_numpy(sq), 3))
    with pytest.raises(RuntimeError):
        vt.linalg.svdvals(v, out=vt.empty(3, dtype=vt.int64))
