"""vt's LU family against torch's: linalg.lu (P, L, U on batched, float32/float64, non-contiguous and
pivot-needing inputs, the A = P L U identity, gradients through L and U, errors), lu_unpack, lu_factor's
gradient and singular error, lu_factor_ex's info and the deprecated torch.lu."""
import os
import sys
from contextlib import nullcontext

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autograd"))
from ag_helpers import check_grads  # noqa: E402

def vt_lu_warned():
    import vibetensor.torch._linalg_lu as LU
    return LU._warned_lu


TOL = {"float64": dict(rtol=1e-9, atol=1e-10), "float32": dict(rtol=1e-4, atol=1e-5)}


def rand(shape, dtype="float64", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (2, 3, 5, 5)])
@pytest.mark.parametrize("noncontig", [False, True])
def test_lu_values(dtype, shape, noncontig):
    a = rand(shape, dtype, seed=len(shape))
    v, t = vt.from_numpy(a.copy()), torch.from_numpy(a.copy())
    if noncontig:
        v, t = v.transpose(-1, -2), t.transpose(-1, -2)
    out_v, out_t = vt.linalg.lu(v), torch.linalg.lu(t)
    assert type(out_v).__name__ == "linalg_lu" and out_v._fields == ("P", "L", "U")
    for name in ("P", "L", "U"):
        got, want = getattr(out_v, name), getattr(out_t, name)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == getattr(vt, dtype)
        np.testing.assert_allclose(got.numpy(), want.numpy(), **TOL[dtype], err_msg=name)
    P, L, U = out_v
    np.testing.assert_allclose((P @ L @ U).numpy(), t.numpy(), **TOL[dtype])


def test_lu_pivots_rows():
    # a zero leading entry forces a row swap: P is not the identity
    a = np.array([[0.0, 2.0, 1.0], [3.0, 1.0, 0.0], [1.0, 1.0, 4.0]])
    P, L, U = vt.linalg.lu(vt.from_numpy(a))
    tP, tL, tU = torch.linalg.lu(torch.from_numpy(a))
    assert not np.allclose(P.numpy(), np.eye(3))
    np.testing.assert_array_equal(P.numpy(), tP.numpy())
    np.testing.assert_allclose(L.numpy(), tL.numpy(), rtol=1e-12)
    np.testing.assert_allclose(U.numpy(), tU.numpy(), rtol=1e-12)
    assert not P.requires_grad


G = [
    ("L", lambda m, A: m.linalg.lu(A).L, [(4, 4)]),
    ("U", lambda m, A: m.linalg.lu(A).U, [(2, 4, 4)]),
    ("L_and_U", lambda m, A: m.linalg.lu(A)[1] * 2 + m.linalg.lu(A)[2], [(3, 3, 3)]),
    ("PLU", lambda m, A: (lambda p: p.P @ p.L @ p.U)(m.linalg.lu(A)), [(5, 5)]),
]


@pytest.mark.parametrize("name,fn,shapes", G, ids=[g[0] for g in G])
def test_lu_gradients(name, fn, shapes):
    a = rand(shapes[0], seed=3)
    v = vt.from_numpy(a.copy()).requires_grad_()
    t = torch.from_numpy(a.copy()).requires_grad_()
    check_grads(fn, [(v, t)])


def test_lu_errors():
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        vt.linalg.lu(vt.ones(3))
    with pytest.raises(RuntimeError, match="floating point"):
        vt.linalg.lu(vt.ones(3, 3, dtype=vt.int64))
    with pytest.raises(NotImplementedError, match="square"):
        vt.linalg.lu(vt.ones(3, 4))


@pytest.mark.parametrize("shape", [(4, 4), (2, 5, 3), (2, 1, 3, 5), (1, 1)])
def test_lu_unpack_of_lu_factor_matches_torch(shape):
    a = rand(shape, seed=7)
    tLU, tp = torch.linalg.lu_factor(torch.from_numpy(a.copy()))
    vLU, vp = vt.from_numpy(tLU.numpy().copy()).requires_grad_(), vt.from_numpy(tp.numpy().copy())
    tLU = tLU.detach().requires_grad_()
    out_v, out_t = vt.lu_unpack(vLU, vp), torch.lu_unpack(tLU, tp)
    assert type(out_v).__name__ == "lu_unpack" and out_v._fields == ("P", "L", "U")
    for got, want in zip(out_v, out_t):
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), **TOL["float64"])
    np.testing.assert_allclose((out_v.P @ out_v.L @ out_v.U).detach().numpy(), a, **TOL["float64"])
    g = np.random.default_rng(8).standard_normal(out_t.U.shape)
    h = np.random.default_rng(9).standard_normal(out_t.L.shape)
    (out_t.U * torch.from_numpy(g)).sum().add((out_t.L * torch.from_numpy(h)).sum()).backward()
    (out_v.U * vt.from_numpy(g)).sum().add((out_v.L * vt.from_numpy(h)).sum()).backward()
    np.testing.assert_allclose(vLU.grad.numpy(), tLU.grad.numpy(), **TOL["float64"])
    assert not out_v.P.requires_grad


def test_lu_unpack_partial_and_errors():
    a = rand((3, 3), seed=1)
    LU, piv = vt.linalg.lu_factor(vt.from_numpy(a))
    tLU, tpiv = torch.linalg.lu_factor(torch.from_numpy(a))
    P, L, U = vt.lu_unpack(LU, piv, unpack_data=False)
    assert tuple(L.shape) == (0,) and tuple(U.shape) == (0,)
    np.testing.assert_array_equal(P.numpy(), torch.lu_unpack(tLU, tpiv).P.numpy())
    P, L, U = vt.lu_unpack(LU, piv, unpack_pivots=False)
    assert tuple(P.shape) == (0,) and tuple(L.shape) == (3, 3)
    with pytest.raises(RuntimeError, match="int32"):
        vt.lu_unpack(LU, piv.long())
    with pytest.raises(RuntimeError, match="2 or more dimensions"):
        vt.lu_unpack(LU[0, 0:1], piv)


def test_lu_factor_gradient_and_singular_errors():
    a = rand((2, 4, 4), seed=4)
    check_grads(lambda m, A: m.linalg.lu_factor(A).LU,
                [(vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_())])
    s = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 4.0]]])
    with pytest.raises(RuntimeError) as tv:
        torch.linalg.lu_factor(torch.from_numpy(s))
    with pytest.raises(RuntimeError) as vv:
        vt.linalg.lu_factor(vt.from_numpy(s))
    assert str(vv.value) == str(tv.value) and "(Batch element 1): U[2,2] is zero" in str(vv.value)
    with pytest.raises(RuntimeError, match="lu_factor_ex: U.2,2. is zero"):
        vt.linalg.lu_factor_ex(vt.from_numpy(s[1]), check_errors=True)


@pytest.mark.parametrize("a", [np.array([[1.0, 2.0], [2.0, 4.0]]), np.zeros((2, 3, 3)), rand((3, 4, 4), seed=5),
                               np.array([[0.0, 1.0, 2.0], [0.0, 3.0, 1.0], [0.0, 2.0, 5.0]])],
                         ids=["singular", "zeros", "regular", "zero-column"])
def test_lu_factor_ex_info_and_deprecated_lu(a):
    out_v, out_t = vt.linalg.lu_factor_ex(vt.from_numpy(a)), torch.linalg.lu_factor_ex(torch.from_numpy(a))
    assert type(out_v).__name__ == "linalg_lu_factor_ex" and out_v._fields == ("LU", "pivots", "info")
    assert out_v.info.dtype == vt.int32 and out_v.pivots.dtype == vt.int32
    for got, want in zip(out_v, out_t):
        np.testing.assert_allclose(got.numpy(), want.numpy(), **TOL["float64"])
    with pytest.warns(UserWarning, match="deprecated") if not vt_lu_warned() else nullcontext():
        LU, piv = vt.lu(vt.from_numpy(a))
    np.testing.assert_allclose(LU.numpy(), out_t.LU.numpy(), **TOL["float64"])
    np.testing.assert_array_equal(piv.numpy(), out_t.pivots.numpy())
    LU, piv, info = vt.lu(vt.from_numpy(a), get_infos=True)
    np.testing.assert_array_equal(info.numpy(), out_t.info.numpy())
