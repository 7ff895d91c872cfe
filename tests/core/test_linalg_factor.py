"""vt.linalg factorizations against torch: solve, inv, lu_factor/lu_solve, det/slogdet/logdet, cholesky(_ex),
solve_triangular, cholesky_solve, qr: values on random well-conditioned batched inputs (float64 tight, float32
loose), non-contiguous inputs, broadcasting, the singular / non-positive-definite errors, and float64 gradients."""
import os
import sys

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autograd"))
from ag_helpers import check_grads  # noqa: E402

TOL = {"float64": dict(rtol=1e-9, atol=1e-10), "float32": dict(rtol=1e-3, atol=1e-4)}


def pair(a, grad=False, noncontig=False):
    if noncontig:
        buf = np.ascontiguousarray(np.swapaxes(a, -1, -2))
        v, t = vt.from_numpy(buf.copy()).transpose(-1, -2), torch.from_numpy(buf.copy()).transpose(-1, -2)
        assert not v.is_contiguous() or a.shape[-1] == 1
    else:
        v, t = vt.from_numpy(a.copy()), torch.from_numpy(a.copy())
    if grad:
        v, t = v.detach().requires_grad_(), t.detach().requires_grad_()
    return v, t


def wellcond(shape, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    n = shape[-1]
    return (rng.standard_normal(shape) + 2 * n ** 0.5 * np.eye(n) * rng.choice([-1, 1], shape[:-1])[..., None]
            ).astype(dtype)


def spd(shape, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape)
    return (X @ np.swapaxes(X, -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dtype)


def rand(shape, dtype="float64", seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def close(v, t, dtype="float64"):
    np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("ashape,bshape", [((4, 4), (4,)), ((3, 5, 5), (3, 5)), ((3, 5, 5), (3, 5, 2)),
                                           ((2, 1, 3, 3), (4, 3, 2)), ((1, 1), (1, 3)), ((6, 6), (2, 6, 1))])
@pytest.mark.parametrize("noncontig", [False, True])
def test_solve_values(dtype, ashape, bshape, noncontig):
    (Av, At), (Bv, Bt) = pair(wellcond(ashape, dtype), noncontig=noncontig), pair(rand(bshape, dtype))
    close(vt.linalg.solve(Av, Bv), torch.linalg.solve(At, Bt), dtype)


def test_solve_left_false_and_inv_det():
    A = wellcond((2, 4, 4))
    (Av, At), (Bv, Bt) = pair(A), pair(rand((2, 3, 4)))
    close(vt.linalg.solve(Av, Bv, left=False), torch.linalg.solve(At, Bt, left=False))
    for f in ["inv", "det"]:
        close(getattr(vt.linalg, f)(Av), getattr(torch.linalg, f)(At))
    close(vt.inverse(Av), torch.inverse(At))
    close(vt.det(Av), torch.det(At))
    s, la = vt.linalg.slogdet(Av)
    ts = torch.linalg.slogdet(At)
    close(s, ts.sign)
    close(la, ts.logabsdet)
    close(vt.logdet(Av), torch.logdet(At))  # one sign is negative: nan on both sides
    assert np.isnan(vt.logdet(Av).numpy()).tolist() == np.isnan(torch.logdet(At).numpy()).tolist()


def test_lu_factor_and_lu_solve():
    (Av, At), (Bv, Bt) = pair(rand((3, 5, 5), seed=4)), pair(rand((3, 5, 2)))
    LUv, pv = vt.linalg.lu_factor(Av)
    LUt, pt = torch.linalg.lu_factor(At)
    close(LUv, LUt)
    assert pv.dtype == vt.int32 and pv.numpy().tolist() == pt.numpy().tolist()
    close(vt.linalg.lu_solve(LUv, pv, Bv), torch.linalg.lu_solve(LUt, pt, Bt))


def test_singular_matrices():
    A = np.array([[1.0, 2.0], [2.0, 4.0]])
    Av, At = pair(np.stack([np.eye(2), A]))
    with pytest.raises(vt.linalg.LinAlgError, match="singular"):
        vt.linalg.solve(Av, vt.ones(2, 2, dtype=vt.float64))
    with pytest.raises(vt.linalg.LinAlgError, match=r"\(Batch element 1\).*singular"):
        vt.linalg.inv(Av)
    assert issubclass(vt.linalg.LinAlgError, RuntimeError)
    close(vt.linalg.det(Av), torch.linalg.det(At))
    s, la = vt.linalg.slogdet(vt.zeros(2, 2, dtype=vt.float64))
    assert float(s) == 0.0 and float(la) == -np.inf


def test_argument_errors():
    with pytest.raises(RuntimeError, match="square"):
        vt.linalg.solve(vt.ones(2, 3, dtype=vt.float64), vt.ones(2, dtype=vt.float64))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        vt.linalg.solve(vt.eye(2, dtype=vt.float64), vt.ones(3, dtype=vt.float64))
    with pytest.raises(RuntimeError, match="floating point"):
        vt.linalg.inv(vt.ones(2, 2, dtype=vt.int64))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        vt.linalg.det(vt.ones(3, dtype=vt.float64))
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        vt.linalg.qr(vt.ones(2, 2), mode="full")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_values(dtype, upper):
    Av, At = pair(spd((3, 5, 5), dtype), noncontig=True)
    close(vt.linalg.cholesky(Av, upper=upper), torch.linalg.cholesky(At, upper=upper), dtype)
    Lv, info = vt.linalg.cholesky_ex(Av, upper=upper)
    close(Lv, torch.linalg.cholesky(At, upper=upper), dtype)
    assert info.numpy().tolist() == [0, 0, 0]
    (Bv, Bt) = pair(rand((3, 5, 2), dtype))
    Lt = torch.linalg.cholesky(At, upper=upper)
    Lv = vt.from_numpy(Lt.numpy().copy())
    close(vt.cholesky_solve(Bv, Lv, upper=upper), torch.cholesky_solve(Bt, Lt, upper=upper), dtype)


def test_cholesky_not_pd():
    A = spd((3, 4, 4))
    A[2, 2, 2] = -50.0  # the leading minor of order 3 of batch element 2 fails
    Av, At = pair(A)
    with pytest.raises(torch.linalg.LinAlgError) as te:
        torch.linalg.cholesky(At)
    with pytest.raises(vt.linalg.LinAlgError) as ve:
        vt.linalg.cholesky(Av)
    assert str(ve.value) == str(te.value)
    assert vt.linalg.cholesky_ex(Av).info.numpy().tolist() == torch.linalg.cholesky_ex(At).info.numpy().tolist()
    with pytest.raises(vt.linalg.LinAlgError, match="order 1 is"):
        vt.linalg.cholesky(-vt.eye(3, dtype=vt.float64))


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular_values(upper, left, unit):
    (Av, At), (Bv, Bt) = pair(wellcond((2, 4, 4)), noncontig=True), pair(rand((2, 4, 3) if left else (2, 3, 4)))
    close(vt.linalg.solve_triangular(Av, Bv, upper=upper, left=left, unitriangular=unit),
          torch.linalg.solve_triangular(At, Bt, upper=upper, left=left, unitriangular=unit))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(5, 5), (2, 6, 3), (2, 3, 6), (1, 1), (4, 1)])
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr_values(dtype, shape, mode):
    Av, At = pair(rand(shape, dtype, seed=3))
    Qv, Rv = vt.linalg.qr(Av, mode=mode)
    Qt, Rt = torch.linalg.qr(At, mode=mode)
    close(Rv, Rt, dtype)  # Householder with LAPACK's sign convention gives torch's R and Q exactly
    if mode != "r":
        close(Qv, Qt, dtype)
    else:
        assert Qv.numel() == 0


G = [
    ("solve_vec", lambda m, A, B: m.linalg.solve(A, B), [(3, 4, 4), (3, 4)]),
    ("solve_mat_bcast", lambda m, A, B: m.linalg.solve(A, B), [(2, 1, 3, 3), (4, 3, 2)]),
    ("solve_right", lambda m, A, B: m.linalg.solve(A, B, left=False), [(2, 3, 3), (2, 4, 3)]),
    ("inv", lambda m, A: m.linalg.inv(A), [(2, 4, 4)]),
    ("det", lambda m, A: m.linalg.det(A), [(3, 4, 4)]),
    ("slogdet", lambda m, A: m.linalg.slogdet(A)[1], [(3, 4, 4)]),
    ("logdet_abs", lambda m, A: m.logdet(A @ A.mT), [(2, 3, 3)]),
    ("cholesky", lambda m, A: m.linalg.cholesky(A @ A.mT + 3 * m.eye(4, dtype=A.dtype)), [(2, 4, 4)]),
    ("cholesky_upper", lambda m, A: m.linalg.cholesky(A @ A.mT + 3 * m.eye(4, dtype=A.dtype), upper=True),
     [(4, 4)]),
    ("solve_tri_lower", lambda m, A, B: m.linalg.solve_triangular(A, B, upper=False), [(2, 4, 4), (2, 4, 3)]),
    ("solve_tri_upper_right_unit", lambda m, A, B: m.linalg.solve_triangular(
        A, B, upper=True, left=False, unitriangular=True), [(2, 4, 4), (2, 3, 4)]),
    ("cholesky_solve", lambda m, L, B: m.cholesky_solve(B, L.tril()), [(2, 3, 3), (2, 3, 2)]),
    ("cholesky_solve_upper", lambda m, L, B: m.cholesky_solve(B, L.triu(), upper=True), [(3, 3), (3, 2)]),
    ("qr_Q", lambda m, A: m.linalg.qr(A)[0], [(2, 5, 3)]),
    ("qr_R", lambda m, A: m.linalg.qr(A)[1], [(2, 4, 4)]),
]


@pytest.mark.parametrize("name,fn,shapes", G, ids=[g[0] for g in G])
def test_gradients(name, fn, shapes):
    pairs = []
    for i, s in enumerate(shapes):
        a = wellcond(s, seed=i) if i == 0 and s[-1] == s[-2] else rand(s, seed=10 + i)
        pairs.append(pair(a, grad=True))
    check_grads(fn, pairs)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("ashape,bshape", [((5, 3), (5, 2)), ((2, 6, 4), (2, 6, 1)), ((3, 5), (3, 2)),
                                           ((2, 4, 4), (1, 4, 3)), ((6, 2), (6,)), ((2, 4, 3), (2, 4))])
def test_lstsq_values(dtype, ashape, bshape):
    (Av, At), (Bv, Bt) = pair(rand(ashape, dtype, seed=5), noncontig=True), pair(rand(bshape, dtype))
    rv, rt = vt.linalg.lstsq(Av, Bv), torch.linalg.lstsq(At, Bt)
    close(rv.solution, rt.solution, dtype)
    assert rv.rank.numpy().tolist() == rt.rank.numpy().tolist()
    assert rv.residuals.numel() == 0 and rv.singular_values.numel() == 0
    assert type(rv).__name__ == "linalg_lstsq" and rv._fields == ("solution", "residuals", "rank", "singular_values")


def test_lstsq_errors():
    with pytest.raises(RuntimeError, match="should match"):
        vt.linalg.lstsq(vt.ones(3, 2, dtype=vt.float64), vt.ones(4, 1, dtype=vt.float64))
    with pytest.raises(RuntimeError, match="driver"):
        vt.linalg.lstsq(vt.ones(3, 2), vt.ones(3, 1), driver="foo")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (3, 6, 6), (2, 2, 3, 3)])
@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_eigh_values(dtype, shape, UPLO):
    X = rand(shape, dtype, seed=7)  # not symmetric: only the UPLO triangle is read, as torch does
    (Xv, Xt) = pair(X, noncontig=True)
    w, V = vt.linalg.eigh(Xv, UPLO=UPLO)
    tw = torch.linalg.eigvalsh(Xt, UPLO=UPLO)
    close(w, tw, dtype)
    close(vt.linalg.eigvalsh(Xv, UPLO=UPLO), tw, dtype)
    S = (np.tril(X) + np.swapaxes(np.tril(X, -1), -1, -2)) if UPLO == "L" else (
        np.triu(X) + np.swapaxes(np.triu(X, 1), -1, -2))
    Vn, wn = V.numpy().astype("float64"), w.numpy().astype("float64")
    tol = TOL[dtype]["atol"] * 10
    np.testing.assert_allclose(S @ Vn, Vn * wn[..., None, :], atol=tol)  # A V = V diag(w)
    np.testing.assert_allclose(np.swapaxes(Vn, -1, -2) @ Vn, np.broadcast_to(np.eye(shape[-1]), Vn.shape), atol=tol)


def test_eigh_degenerate_and_diagonal():
    D = vt.from_numpy(np.diag([3.0, 1.0, 1.0, -2.0]))
    w, V = vt.linalg.eigh(D)
    assert w.numpy().tolist() == [-2.0, 1.0, 1.0, 3.0]
    np.testing.assert_allclose(np.abs(V.numpy()).sum(0), np.ones(4))
    with pytest.raises(RuntimeError, match="UPLO"):
        vt.linalg.eigh(D, UPLO="X")


G2 = [
    ("lstsq_tall", lambda m, A, B: m.linalg.lstsq(A, B).solution, [(5, 3), (5, 2)]),
    ("lstsq_wide", lambda m, A, B: m.linalg.lstsq(A, B).solution, [(2, 3, 5), (2, 3, 2)]),
    ("eigvalsh", lambda m, X: m.linalg.eigvalsh(X + X.mT), [(2, 4, 4)]),
    ("eigh_vectors_sq", lambda m, X: m.linalg.eigh(X + X.mT)[1] ** 2, [(2, 4, 4)]),
    ("eigh_both", lambda m, X: m.linalg.eigh(X + X.mT)[0].unsqueeze(-1) * m.linalg.eigh(X + X.mT)[1] ** 2,
     [(3, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", G2, ids=[g[0] for g in G2])
def test_gradients_lstsq_eigh(name, fn, shapes):
    pairs = [pair(rand(s, seed=20 + i), grad=True) for i, s in enumerate(shapes)]
    check_grads(fn, pairs)


@pytest.mark.parametrize("f", ["det", "inv", "cholesky", "slogdet", "qr", "eigvalsh", "lu_factor"])
@pytest.mark.parametrize("shape", [(0, 0), (0, 3, 3), (2, 0, 0)])
def test_empty(f, shape):
    r = getattr(vt.linalg, f)(vt.zeros(*shape, dtype=vt.float64))
    t = getattr(torch.linalg, f)(torch.zeros(*shape, dtype=torch.float64))
    r, t = (r[-1], t[-1]) if isinstance(t, tuple) else (r, t)
    assert tuple(r.shape) == tuple(t.shape)
    close(r, t)  # det of a 0x0 matrix is 1


def test_out_arguments_write_like_torch():
    import torch

    a = np.random.default_rng(9).standard_normal((3, 3)) + 3 * np.eye(3)
    for name, args in (("inv", ()), ("det", ()), ("cholesky", ())):
        src = a @ a.T if name == "cholesky" else a
        vo, to = vt.empty(0, dtype=vt.float64), torch.empty(0, dtype=torch.float64)
        vr = getattr(vt.linalg, name)(vt.from_numpy(src.copy()), *args, out=vo)
        tr = getattr(torch.linalg, name)(torch.from_numpy(src.copy()), *args, out=to)
        assert vr is vo and tr is to
        np.testing.assert_allclose(vo.numpy(), to.numpy(), rtol=1e-10, atol=1e-12)
    q, r = vt.empty(0, dtype=vt.float64), vt.empty(0, dtype=vt.float64)
    res = vt.linalg.qr(vt.from_numpy(a.copy()), out=(q, r))
    assert res[0] is q and res[1] is r
    np.testing.assert_allclose((q @ r).numpy(), a, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore:torch.(cholesky|qr) is deprecated")
def test_tensor_methods_match_torch():
    a = np.random.default_rng(10).standard_normal((2, 4, 4))
    a = a @ a.transpose(0, 2, 1) + 4 * np.eye(4)  # symmetric positive definite, well conditioned
    v, t = vt.from_numpy(a.copy()), torch.from_numpy(a.copy())
    cases = {
        "det": lambda x: x.det(), "logdet": lambda x: x.logdet(), "slogdet": lambda x: x.slogdet()[1],
        "inverse": lambda x: x.inverse(), "cholesky": lambda x: x.cholesky(),
        "cholesky_upper": lambda x: x.cholesky(upper=True),
        "cholesky_solve": lambda x: x[..., :2].cholesky_solve(x.cholesky()),
        "cholesky_inverse": lambda x: x.cholesky().cholesky_inverse(),
        "pinverse": lambda x: x.pinverse(), "matrix_power": lambda x: x.matrix_power(3),
        "matrix_exp": lambda x: (x / 10).matrix_exp(), "svd_values": lambda x: x.svd()[1],
        "qr_r": lambda x: x.qr()[1].abs(), "qr_complete_r": lambda x: x.qr(some=False)[1].abs(),
    }
    for name, f in cases.items():
        np.testing.assert_allclose(f(v).numpy(), f(t).numpy(), rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("unitriangular", [False, True])
def test_triangular_solve_matches_torch(upper, transpose, unitriangular):
    """The deprecated torch.triangular_solve(B, A) (GP code's whitening step): solution and cloned coefficient,
    batch broadcasting, a non-contiguous A, the Tensor method, and gradients to both."""
    import warnings

    A = np.triu(wellcond((2, 4, 4), seed=3)) if upper else np.tril(wellcond((2, 4, 4), seed=3))
    B = rand((3, 1, 4, 2), seed=4)
    (va, ta), (vb, tb) = pair(A, noncontig=True), pair(B)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rv = vt.triangular_solve(vb, va, upper=upper, transpose=transpose, unitriangular=unitriangular)
        rt = torch.triangular_solve(tb, ta, upper=upper, transpose=transpose, unitriangular=unitriangular)
        assert type(rv).__name__ == "triangular_solve" and tuple(rv.solution.shape) == tuple(rt.solution.shape)
        np.testing.assert_allclose(rv.solution.numpy(), rt.solution.numpy(), **TOL["float64"])
        np.testing.assert_allclose(rv.cloned_coefficient.numpy(), rt.cloned_coefficient.numpy(), rtol=0)
        np.testing.assert_allclose(vb.triangular_solve(va, upper, transpose).solution.numpy(),
                                   tb.triangular_solve(ta, upper, transpose).solution.numpy(), **TOL["float64"])
        check_grads(lambda m, b, a: m.triangular_solve(b, a, upper=upper, transpose=transpose,
                                                       unitriangular=unitriangular)[0],
                    [pair(B[0], grad=True), pair(A[0], grad=True)])


def test_triangular_solve_warns_once_and_errors_as_torch(monkeypatch):
    import warnings

    from vibetensor.torch import _sci_functions

    monkeypatch.setattr(_sci_functions, "_warned", [])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(2):
            vt.triangular_solve(vt.ones(2, 1, dtype=vt.float64), vt.eye(2, dtype=vt.float64))
    assert len(seen) == 1 and "deprecated in favor of torch.linalg.solve_triangular" in str(seen[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in (vt, torch):
            with pytest.raises(RuntimeError, match="Expected b to have at least 2 dimensions, but it has 1"):
                m.triangular_solve(m.ones(2, dtype=m.float64), m.eye(2, dtype=m.float64))


def test_vander_matches_torch():
    for x, kw in (([1, 2, 3], {}), ([1.5, 2.0, -0.5], dict(N=4, increasing=True)), ([2.0], dict(N=0)),
                  ([True, False], {}), ([0.5, 3.0], dict(N=1)), ([], dict(N=3))):
        v, t = vt.vander(vt.tensor(x), **kw), torch.vander(torch.tensor(x), **kw)
        assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] and tuple(v.shape) == tuple(t.shape)
        np.testing.assert_array_equal(v.numpy(), t.numpy())
    # torch's own vander backward fails (an in-place cumprod): the gradient against the calculus instead
    x = rand((5,), seed=6)
    v = vt.from_numpy(x.copy()).requires_grad_()
    g = rand((5, 4), seed=7)
    (vt.vander(v, N=4) * vt.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), (g * np.stack([3 * x ** 2, 2 * x, np.ones(5), np.zeros(5)], 1)).sum(1),
                               rtol=1e-12, atol=1e-14)
    for m in (vt, torch):
        with pytest.raises(RuntimeError, match="one-dimensional"):
            m.vander(m.ones(2, 2))
        with pytest.raises(RuntimeError, match="non-negative"):
            m.vander(m.ones(2), N=-1)
