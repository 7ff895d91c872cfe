"""Dense factorizations for vt.linalg: lu_factor / lu_solve, solve, inv, det / slogdet / logdet, cholesky /
cholesky_ex, solve_triangular, cholesky_solve, qr (Householder), lstsq (via qr) and eigh / eigvalsh (Jacobi).

Every algorithm is batched over the leading dims (flattened to one batch dim) with a Python loop over the
matrix size n, composed from vt ops so it runs on CPU and CUDA alike: O(n) op launches per call, fine for the
small/medium n of research code, slow for large n (eigh: O(n^2) rotations per sweep, one host read per sweep
for convergence). Gradients use torch's closed-form rules through vt.autograd.Function (solve, det, slogdet,
cholesky, solve_triangular, eigh); qr and lstsq differentiate through their parts. lu_solve carries no
gradient; lu_factor (differentiable) is _linalg_lu's.
Singular / non-positive-definite inputs are found with one host read, for the error message only."""
from __future__ import annotations

import collections
import math

from .._C import core as _core
from ..autograd.function import Function
from ..autograd.grad_mode import no_grad

Tensor = _core.Tensor


class LinAlgError(RuntimeError):
    """Raised when a factorization fails (singular or not positive-definite input), like torch.linalg.LinAlgError."""


def _vt():
    from .. import torch as vt  # the package is fully imported by the time any function here runs
    return vt


LU_factor = collections.namedtuple("linalg_lu_factor", ["LU", "pivots"])
Slogdet = collections.namedtuple("linalg_slogdet", ["sign", "logabsdet"])
Cholesky_ex = collections.namedtuple("linalg_cholesky_ex", ["L", "info"])
QR = collections.namedtuple("linalg_qr", ["Q", "R"])


def _check_square(A, name, what="A"):
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got {A.dtype}")
    if A.dim() < 2:
        raise RuntimeError(f"{name}: The input tensor {what} must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{name}: {what} must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")


def _flat(A):
    n0, n1 = A.shape[-2], A.shape[-1]
    # an explicit batch size: reshape(-1, 0, 0) is ambiguous for 0x0 matrices
    return A.contiguous().reshape(math.prod(A.shape[:-2]), n0, n1).clone()


def _mT(A):
    return A.transpose(-2, -1)


# ---- no-grad kernels on (Bt, n, n) batches --------------------------------------------------------------------

def _lu_core(A3):
    """Partial-pivoting LU of a (Bt, n, n) batch: packed LU, the 0-based pivot row per step (Bt, n) and the row
    permutation perm (P A = L U with (P A)[i] = A[perm[i]])."""
    vt = _vt()
    Bt, n = A3.shape[0], A3.shape[-1]
    LU = A3.clone()
    ar = vt.arange(n, device=A3.device).view(1, n).expand(Bt, n)
    perm = ar.clone()
    pivs = []
    for k in range(n):
        p = LU[:, k:, k].abs().argmax(1).view(Bt, 1) + k
        pivs.append(p)
        idx = vt.where(ar == k, p, vt.where(ar == p, k, ar))  # swap rows k and p
        LU = LU.gather(1, idx.view(Bt, n, 1).expand(Bt, n, n)).contiguous()
        perm = perm.gather(1, idx)
        if k + 1 < n:
            piv = LU[:, k, k].view(Bt, 1)
            # a zero pivot means the whole column below is zero: leave it (LAPACK does the same)
            l = LU[:, k + 1:, k] / vt.where(piv == 0, vt.ones_like(piv), piv)
            LU[:, k + 1:, k] = l
            LU[:, k + 1:, k + 1:] -= l.unsqueeze(2) * LU[:, k, k + 1:].unsqueeze(1)
    piv = vt.cat(pivs, 1) if n else vt.zeros(Bt, 0, dtype=vt.int64, device=A3.device)
    return LU, piv, perm


def _trsm(T, B, upper, unit=False):
    """Solve T X = B for triangular T (Bt, n, n) and B (Bt, n, k), reading only T's triangle."""
    n = T.shape[-1]
    X = B.clone()
    for i in (range(n - 1, -1, -1) if upper else range(n)):
        lo, hi = (i + 1, n) if upper else (0, i)
        xi = X[:, i:i + 1]
        if hi > lo:
            xi = xi - T[:, i:i + 1, lo:hi] @ X[:, lo:hi]
        if not unit:
            xi = xi / T[:, i:i + 1, i:i + 1]
        X[:, i:i + 1] = xi
    return X


def _batch_prefix(b, nb):
    return f"(Batch element {b}): " if nb > 1 else ""


def _raise_singular(U_diag, name):
    """One host read: raise LinAlgError when some U diagonal is zero."""
    zero = U_diag == 0
    if bool(zero.any()):
        b = int(zero.any(1).int().argmax())
        i = int(zero[b].int().argmax()) + 1
        if name == "torch.linalg.solve":
            raise LinAlgError("torch.linalg.solve: The solver failed because the input matrix is singular.")
        raise LinAlgError(f"{name}: {_batch_prefix(b, U_diag.shape[0])}The diagonal element {i} is zero, the "
                          "inversion could not be completed because the input matrix is singular.")


def _solve_core(A3, B3, name):
    LU, _, perm = _lu_core(A3)
    _raise_singular(LU.diagonal(dim1=-2, dim2=-1), name)
    k = B3.shape[-1]
    PB = B3.gather(1, perm.unsqueeze(2).expand(B3.shape[0], A3.shape[-1], k))
    return _trsm(LU, _trsm(LU, PB, upper=False, unit=True), upper=True)


def _det_core(A3):
    vt = _vt()
    LU, piv, _ = _lu_core(A3)
    n = A3.shape[-1]
    swaps = (piv != vt.arange(n, device=A3.device).view(1, n)).sum(1)
    sign = 1 - 2 * (swaps % 2).to(A3.dtype)
    return LU.diagonal(dim1=-2, dim2=-1), sign


# ---- solve / inv -----------------------------------------------------------------------------------------------

class _Solve(Function):
    @staticmethod
    def forward(ctx, A, B, name):
        shape = B.shape
        X = _solve_core(_flat(A), _flat(B), name).reshape(shape)
        ctx.save_for_backward(A, X)
        ctx.name = name
        return X

    @staticmethod
    def backward(ctx, gX):
        A, X = ctx.saved_tensors
        with no_grad():
            gB = _solve_core(_flat(_mT(A)), _flat(gX), ctx.name).reshape(X.shape)
            gA = -(gB @ _mT(X))
        return gA, gB, None


def _broadcast_solve_args(A, B, name):
    vt = _vt()
    n = A.shape[-1]
    vector = B.dim() == 1 or (B.dim() == A.dim() - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    if vector:
        B = B.unsqueeze(-1)
    if B.shape[-2] != n:
        raise RuntimeError(f"{name}: Incompatible shapes of A and B for the equation AX = B "
                           f"({A.shape[-2]}x{n} and {B.shape[-2]}x{B.shape[-1]})")
    batch = tuple(vt.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2])))
    return A.expand(batch + (n, n)), B.expand(batch + tuple(B.shape[-2:])), vector


def solve(A, B, *, left=True):
    """X with A X = B (left=True) or X A = B, by LU with partial pivoting; B a vector or a batch of matrices."""
    _check_square(A, "linalg.solve")
    if A.dtype != B.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{A.dtype} and B of type {B.dtype} instead")
    if not left:
        return _mT(solve(_mT(A), _mT(B)))
    A, B, vector = _broadcast_solve_args(A, B, "linalg.solve")
    X = _Solve.apply(A, B, "torch.linalg.solve")
    return X.squeeze(-1) if vector else X


def inv(A):
    _check_square(A, "linalg.inv")
    vt = _vt()
    n = A.shape[-1]
    eye = vt.eye(n, dtype=A.dtype, device=A.device).expand(tuple(A.shape))
    return _Solve.apply(A, eye, "linalg.inv")


def lu_factor(A, *, pivot=True):
    """Kept under this name for linalg's import: the differentiable lu_factor lives with the LU family."""
    from ._linalg_lu import lu_factor as _lu_factor
    return _lu_factor(A, pivot=pivot)


def lu_solve(LU, pivots, B, *, left=True, adjoint=False):
    """Solve A X = B from lu_factor's output (left=True, adjoint=False only; no gradient)."""
    if not left or adjoint:
        raise NotImplementedError("linalg.lu_solve: only left=True, adjoint=False is supported")
    vt = _vt()
    n = LU.shape[-1]
    batch = tuple(vt.broadcast_shapes(tuple(LU.shape[:-2]), tuple(B.shape[:-2])))
    with no_grad():
        LU3 = _flat(LU.expand(batch + (n, n)))
        k = B.shape[-1]
        X = _flat(B.expand(batch + (n, k)))
        piv = pivots.expand(batch + (n,)).reshape(math.prod(batch), n).long() - 1
        Bt = X.shape[0]
        ar = vt.arange(n, device=LU.device).view(1, n).expand(Bt, n)
        for i in range(n):  # the row swaps, in order
            p = piv[:, i:i + 1]
            idx = vt.where(ar == i, p, vt.where(ar == p, i, ar))
            X = X.gather(1, idx.view(Bt, n, 1).expand(Bt, n, k))
        X = _trsm(LU3, _trsm(LU3, X.contiguous(), upper=False, unit=True), upper=True)
    return X.reshape(batch + (n, k))


# ---- determinants ----------------------------------------------------------------------------------------------

def _inv_T(A):
    vt = _vt()
    n = A.shape[-1]
    eye = _flat(vt.eye(n, dtype=A.dtype, device=A.device).expand(tuple(A.shape)))
    return _mT(_solve_core(_flat(A), eye, "linalg.det").reshape(tuple(A.shape)))


class _Det(Function):
    @staticmethod
    def forward(ctx, A):
        diag, sign = _det_core(_flat(A))
        d = (diag.prod(1) * sign).reshape(tuple(A.shape[:-2]))
        ctx.save_for_backward(A, d)
        return d

    @staticmethod
    def backward(ctx, g):
        A, d = ctx.saved_tensors
        with no_grad():  # d det / dA = det * A^{-T} (needs A invertible)
            return (g * d).unsqueeze(-1).unsqueeze(-1) * _inv_T(A)


class _Slogdet(Function):
    @staticmethod
    def forward(ctx, A):
        diag, sign = _det_core(_flat(A))
        vt = _vt()
        s = (vt.sign(diag).prod(1) * sign).reshape(tuple(A.shape[:-2]))
        la = diag.abs().log().sum(1).reshape(tuple(A.shape[:-2]))
        ctx.save_for_backward(A)
        ctx.mark_non_differentiable(s)
        return s, la

    @staticmethod
    def backward(ctx, *grads):
        g_la = grads[-1]  # the non-differentiable sign gets no gradient slot
        (A,) = ctx.saved_tensors
        with no_grad():
            return g_la.unsqueeze(-1).unsqueeze(-1) * _inv_T(A)


def det(A):
    _check_square(A, "linalg.det")
    return _Det.apply(A)


def slogdet(A):
    _check_square(A, "linalg.slogdet")
    return Slogdet(*_Slogdet.apply(A))


def logdet(A):
    _check_square(A, "logdet")
    s, la = _Slogdet.apply(A)
    return _vt().where(s < 0, math.nan, la)


# ---- triangular solves, cholesky -------------------------------------------------------------------------------

def _tri_project(G, upper, unit):
    return (G.triu(1 if unit else 0)) if upper else (G.tril(-1 if unit else 0))


class _SolveTriangular(Function):
    @staticmethod
    def forward(ctx, A, B, upper, unit):
        X = _trsm(_flat(A), _flat(B), upper, unit).reshape(tuple(B.shape))
        ctx.save_for_backward(A, X)
        ctx.upper, ctx.unit = upper, unit
        return X

    @staticmethod
    def backward(ctx, gX):
        A, X = ctx.saved_tensors
        with no_grad():
            gB = _trsm(_flat(_mT(A)), _flat(gX), not ctx.upper, ctx.unit).reshape(tuple(X.shape))
            gA = _tri_project(-(gB @ _mT(X)), ctx.upper, ctx.unit)
        return gA, gB, None, None


def solve_triangular(A, B, *, upper, left=True, unitriangular=False):
    vt = _vt()
    _check_square(A, "linalg.solve_triangular")
    if B.dim() < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 dimensions.")
    if A.dtype != B.dtype:
        raise RuntimeError(f"linalg.solve_triangular: Expected A and B to have the same dtype, but found A of type "
                           f"{A.dtype} and B of type {B.dtype} instead")
    if not left:
        return _mT(solve_triangular(_mT(A), _mT(B), upper=not upper, unitriangular=unitriangular))
    n = A.shape[-1]
    if B.shape[-2] != n:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the equation AX = B "
                           f"({A.shape[-2]}x{n} and {B.shape[-2]}x{B.shape[-1]})")
    batch = tuple(vt.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2])))
    A, B = A.expand(batch + (n, n)), B.expand(batch + tuple(B.shape[-2:]))
    return _SolveTriangular.apply(A, B, bool(upper), bool(unitriangular))


def _cholesky_core(A3):
    """Lower Cholesky factor of a (Bt, n, n) batch (reads the lower triangle) and info (0, or the order of the
    first leading minor that is not positive-definite)."""
    vt = _vt()
    Bt, n = A3.shape[0], A3.shape[-1]
    L = vt.zeros_like(A3)
    info = vt.zeros(Bt, dtype=vt.int32, device=A3.device)
    for j in range(n):
        d = A3[:, j, j]
        if j:
            d = d - (L[:, j, :j] * L[:, j, :j]).sum(1)
        info = vt.where((info == 0) & ~(d > 0), j + 1, info)
        dj = d.sqrt()
        L[:, j, j] = dj
        if j + 1 < n:
            col = A3[:, j + 1:, j]
            if j:
                col = col - (L[:, j + 1:, :j] @ L[:, j, :j].unsqueeze(2)).squeeze(2)
            L[:, j + 1:, j] = col / dj.unsqueeze(1)
    return L, info


class _Cholesky(Function):
    @staticmethod
    def forward(ctx, A):
        L, info = _cholesky_core(_flat(A))
        L = L.reshape(tuple(A.shape))
        ctx.save_for_backward(L)
        ctx.info = info
        return L

    @staticmethod
    def backward(ctx, gL):
        (L,) = ctx.saved_tensors
        with no_grad():  # gA = L^{-T} Phi(L^T gL) L^{-1}, Phi = lower triangle with halved diagonal, symmetrized
            phi = (_mT(L) @ gL.tril()).tril()
            phi = phi - 0.5 * phi.diagonal(dim1=-2, dim2=-1).diag_embed()
            LT = _flat(_mT(L))
            S = _trsm(LT, _flat(phi), upper=True)
            gA = _mT(_trsm(LT, _mT(S).contiguous(), upper=True)).reshape(tuple(L.shape))
            return 0.5 * (gA + _mT(gA))


def cholesky_ex(A, *, upper=False, check_errors=False):
    _check_square(A, "linalg.cholesky")
    L = _Cholesky.apply(A)
    with no_grad():
        _, info = _cholesky_core(_flat(A.detach()))
    info = info.reshape(tuple(A.shape[:-2]))
    if check_errors:
        _raise_not_pd(info.reshape(-1), "linalg.cholesky_ex")
    return Cholesky_ex(_mT(L) if upper else L, info)


def _raise_not_pd(info, name):
    bad = info != 0
    if bool(bad.any()):
        b = int(bad.int().argmax())
        raise LinAlgError(f"{name}: {_batch_prefix(b, info.shape[0])}The factorization could not be completed "
                          f"because the input is not positive-definite (the leading minor of order "
                          f"{int(info[b])} is not positive-definite).")


def cholesky(A, *, upper=False):
    _check_square(A, "linalg.cholesky")
    with no_grad():
        _, info = _cholesky_core(_flat(A.detach()))
    _raise_not_pd(info, "linalg.cholesky")
    L = _Cholesky.apply(A)
    return _mT(L) if upper else L


def cholesky_solve(B, L, upper=False):
    """X with A X = B where A = L L^T (or U^T U when upper)."""
    T = _mT(L) if upper else L  # lower factor
    return solve_triangular(_mT(T), solve_triangular(T, B, upper=False), upper=True)


# ---- QR --------------------------------------------------------------------------------------------------------

def qr(A, mode="reduced"):
    """Householder QR (R's diagonal takes LAPACK's sign convention); differentiable through its parts."""
    vt = _vt()
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
                           "'r', or 'complete'")
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"linalg.qr: Expected a floating point or complex tensor as input. Got {A.dtype}")
    if A.dim() < 2:
        raise RuntimeError("linalg.qr: The input tensor A must have at least 2 dimensions.")
    m, n = A.shape[-2], A.shape[-1]
    batch = tuple(A.shape[:-2])
    R = A.reshape((math.prod(batch), m, n))
    Bt = R.shape[0]
    Q = vt.eye(m, dtype=A.dtype, device=A.device).unsqueeze(0).expand(Bt, m, m)
    for k in range(min(m - 1, n)):  # the last 1-element column of a square A needs no reflection
        x = R[:, k:, k]
        nx = (x * x).sum(1, keepdim=True).sqrt()
        s = vt.where(x[:, :1] < 0, -1.0, 1.0).to(A.dtype)
        head = x[:, :1] + s * nx
        v = vt.cat([vt.zeros(Bt, k, dtype=A.dtype, device=A.device), head, x[:, 1:]], 1)  # (Bt, m)
        vv = (v * v).sum(1, keepdim=True)
        # a zero column needs no reflection: vv = 0 there, so use tau = 0
        tau = vt.where(vv > 0, 2.0 / vt.where(vv > 0, vv, vt.ones_like(vv)), vt.zeros_like(vv))
        v3 = v.unsqueeze(2)
        R = R - (tau.unsqueeze(2) * v3) @ (_mT(v3) @ R)
        Q = Q - ((Q @ v3) * tau.unsqueeze(2)) @ _mT(v3)
    R = R.triu()
    if mode == "r":
        return QR(vt.empty(0, dtype=A.dtype, device=A.device), (R if m <= n else R[:, :n]).reshape(
            batch + (min(m, n), n)))
    if mode == "reduced" and m > n:
        Q, R = Q[:, :, :n], R[:, :n]
    return QR(Q.reshape(batch + tuple(Q.shape[-2:])), R.reshape(batch + tuple(R.shape[-2:])))


# ---- least squares ---------------------------------------------------------------------------------------------

Lstsq = collections.namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])


def lstsq(A, B, rcond=None, *, driver=None):
    """Least squares / minimum-norm solution of A X = B via QR, for full-rank A (torch's default 'gelsy' results:
    empty residuals and singular_values; rank counts R's diagonal above rcond). Differentiable through its parts."""
    vt = _vt()
    if driver not in (None, "gels", "gelsy", "gelsd", "gelss"):
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)")
    if not A.dtype.is_floating_point or A.dtype != B.dtype:
        raise RuntimeError(f"torch.linalg.lstsq: Expected input and other to be floating point tensors of the same "
                           f"dtype, got {A.dtype} and {B.dtype}")
    if A.dim() < 2:
        raise RuntimeError("torch.linalg.lstsq: input must have at least 2 dimensions.")
    m, n = A.shape[-2], A.shape[-1]
    vector = B.dim() == A.dim() - 1
    if vector:
        B = B.unsqueeze(-1)
    if B.shape[-2] != m:
        raise RuntimeError("torch.linalg.lstsq: input.size(-2) should match other.size(-2)")
    batch = tuple(vt.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2])))
    A, B = A.expand(batch + (m, n)), B.expand(batch + tuple(B.shape[-2:]))
    if m >= n:  # A = Q R: X = R^{-1} Q^T B
        Q, R = qr(A)
        X = solve_triangular(R, _mT(Q) @ B, upper=True)
    else:  # A^T = Q R, A = R^T Q^T: the minimum-norm X = Q R^{-T} B
        Q, R = qr(_mT(A))
        X = Q @ solve_triangular(_mT(R), B, upper=False)
    with no_grad():
        d = R.diagonal(dim1=-2, dim2=-1).abs()
        eps = 1.1920928955078125e-07 if A.dtype == vt.float32 else 2.220446049250313e-16
        tol = (eps * max(m, n) if rcond is None else rcond) * d.amax(-1, keepdim=True) if d.numel() else d
        rank = (d > tol).sum(-1) if d.numel() else vt.zeros(batch, dtype=vt.int64, device=A.device)
    empty = vt.empty(0, dtype=A.dtype, device=A.device)
    return Lstsq(X.squeeze(-1) if vector else X, empty, rank, empty)


# ---- symmetric eigendecomposition ------------------------------------------------------------------------------

Eigh = collections.namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])


def _jacobi_eigh(A3, max_sweeps=50):
    """Cyclic Jacobi rotations on a symmetric (Bt, n, n) batch; eigenvalues ascending and the eigenvectors as
    columns. Stops when the off-diagonal mass is negligible (one host read per sweep)."""
    vt = _vt()
    Bt, n = A3.shape[0], A3.shape[-1]
    A = A3.clone()
    V = vt.eye(n, dtype=A3.dtype, device=A3.device).unsqueeze(0).expand(Bt, n, n).contiguous()
    eps = 1.1920928955078125e-07 if A3.dtype == vt.float32 else 2.220446049250313e-16
    scale = float((A3 * A3).sum()) + 1e-300
    for _ in range(max_sweeps):
        off = float((A * A).sum()) - float((A.diagonal(dim1=-2, dim2=-1) ** 2).sum())
        if off <= (eps * eps) * scale:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq, app, aqq = A[:, p, q], A[:, p, p], A[:, q, q]
                zero = apq == 0
                theta = (aqq - app) / (2 * vt.where(zero, vt.ones_like(apq), apq))
                sg = vt.where(theta < 0, -1.0, 1.0).to(A.dtype)
                t = sg / (theta.abs() + (theta * theta + 1).sqrt())
                t = vt.where(zero, vt.zeros_like(t), t)
                c = 1 / (t * t + 1).sqrt()
                s = (t * c).view(Bt, 1)
                c = c.view(Bt, 1)
                # A <- P^T A P: columns p, q then rows p, q; V <- V P
                for M in (A, V):
                    mp, mq = M[:, :, p].clone(), M[:, :, q].clone()
                    M[:, :, p] = c * mp - s * mq
                    M[:, :, q] = s * mp + c * mq
                rp, rq = A[:, p, :].clone(), A[:, q, :].clone()
                A[:, p, :] = c * rp - s * rq
                A[:, q, :] = s * rp + c * rq
    w, idx = vt.sort(A.diagonal(dim1=-2, dim2=-1), dim=-1)
    return w.contiguous(), V.gather(2, idx.unsqueeze(1).expand(Bt, n, n))


class _Eigh(Function):
    @staticmethod
    def forward(ctx, A):
        w, V = _jacobi_eigh(_flat(A))
        w, V = w.reshape(tuple(A.shape[:-1])), V.reshape(tuple(A.shape))
        ctx.save_for_backward(w, V)
        return w, V

    @staticmethod
    def backward(ctx, gw, gV):
        w, V = ctx.saved_tensors
        with no_grad():  # gA = V (diag(gw) + (V^T gV)_ij / (w_j - w_i) off the diagonal) V^T
            n = w.shape[-1]
            eye = _vt().eye(n, dtype=w.dtype, device=w.device)
            inner = 0
            if gV is not None:
                E = w.unsqueeze(-2) - w.unsqueeze(-1)
                inner = (_mT(V) @ gV) / (E + eye) * (1 - eye)
            if gw is not None:
                inner = inner + gw.diag_embed()
            return V @ inner @ _mT(V)


def _sym_from(A, UPLO):
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    T = A.tril() if UPLO == "L" else A.triu()
    return T + (_mT(T.tril(-1)) if UPLO == "L" else _mT(T.triu(1)))


def eigh(A, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix by cyclic Jacobi rotations; reads one
    triangle like torch. Eigenvector signs are arbitrary (as in torch)."""
    _check_square(A, "linalg.eigh")
    return Eigh(*_Eigh.apply(_sym_from(A, UPLO)))


def eigvalsh(A, UPLO="L"):
    return eigh(A, UPLO).eigenvalues


# out= with torch's rules for out arguments (Note [out= by copy]), on every function here that torch gives it
from . import _out  # noqa: E402

for _name in ("solve", "inv", "lu_factor", "lu_solve", "det", "slogdet", "solve_triangular", "cholesky_ex", "cholesky",
              "cholesky_solve", "qr", "eigh", "eigvalsh"):
    globals()[_name] = _out.accepts_out(globals()[_name])
