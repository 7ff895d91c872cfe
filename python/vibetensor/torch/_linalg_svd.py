"""Singular values and what builds on them for vt.linalg: svd / svdvals (one-sided Jacobi), torch.svd, pinv,
matrix_rank, cond, matrix_power, matrix_exp (scaling and squaring, Pade 13), cross and vecdot.

svd runs Hestenes' one-sided Jacobi on the columns of A (of A^T when A is wide): disjoint column pairs are
rotated together in round-robin order, so a sweep is n-1 batched steps, with one host read per sweep for
convergence. It keeps high relative accuracy of the singular values (no A^T A is formed). Gradients use the
closed form for distinct singular values through vt.autograd.Function; the rest differentiates by composition."""
from __future__ import annotations

import collections
import math

from .._C import core as _core
from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from ._linalg_factor import _flat, _lu_core, _mT, _vt, _check_square, inv, solve, eigh, eigvalsh, qr

Tensor = _core.Tensor

SVD = collections.namedtuple("linalg_svd", ["U", "S", "Vh"])
TorchSVD = collections.namedtuple("svd", ["U", "S", "V"])


def _eps(dtype):
    return 1.1920928955078125e-07 if dtype == _vt().float32 else 2.220446049250313e-16


def _check_float(A, name):
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got {A.dtype}")
    if A.dim() < 2:
        raise RuntimeError(f"{name}: The input tensor A must have at least 2 dimensions.")


def _round_robin(N):
    """N-1 rounds of N/2 disjoint pairs (circle method) covering every pair once; N even."""
    players = list(range(N))
    rounds = []
    for _ in range(N - 1):
        rounds.append(([players[i] for i in range(N // 2)], [players[N - 1 - i] for i in range(N // 2)]))
        players = [players[0], players[-1]] + players[1:-1]
    return rounds


def _jacobi_svd(A3, max_sweeps=60):
    """Tall-or-square (Bt, m, n) batch, m >= n: U (Bt, m, n) with unit (or zero) columns, S (Bt, n) descending,
    V (Bt, n, n)."""
    vt = _vt()
    Bt, m, n = A3.shape
    dt, dev = A3.dtype, A3.device
    N = n + (n % 2)  # an odd n gets a zero column: its rotations are exact identities (gamma = 0)
    G = A3 if N == n else vt.cat([A3, vt.zeros(Bt, m, 1, dtype=dt, device=dev)], 2)
    V = vt.eye(N, dtype=dt, device=dev).unsqueeze(0).expand(Bt, N, N).contiguous()
    rounds = [(vt.tensor(p, device=dev), vt.tensor(q, device=dev),
               vt.tensor([(p + q).index(j) for j in range(N)], device=dev)) for p, q in _round_robin(N)]
    tol = _eps(dt) * max(m, 1)
    for _ in range(max_sweeps if N > 1 else 0):
        for P, Q, back in rounds:
            gp, gq = G.index_select(2, P), G.index_select(2, Q)
            alpha, beta, gamma = (gp * gp).sum(1), (gq * gq).sum(1), (gp * gq).sum(1)  # (Bt, N/2)
            zero = gamma == 0
            zeta = (beta - alpha) / (2 * vt.where(zero, vt.ones_like(gamma), gamma))
            sg = vt.where(zeta < 0, -1.0, 1.0).to(dt)
            t = vt.where(zero, vt.zeros_like(zeta), sg / (zeta.abs() + (zeta * zeta + 1).sqrt()))
            c = (1 / (t * t + 1).sqrt()).unsqueeze(1)
            s = c * t.unsqueeze(1)
            G = vt.cat([c * gp - s * gq, s * gp + c * gq], 2).index_select(2, back)
            vp, vq = V.index_select(2, P), V.index_select(2, Q)
            V = vt.cat([c * vp - s * vq, s * vp + c * vq], 2).index_select(2, back)
        nrm = (G * G).sum(1).sqrt()
        gram = (_mT(G) @ G).abs()
        # columns at rounding level of the largest are numerically zero: their directions never settle
        nrm = vt.where(nrm > tol * nrm.amax(1, keepdim=True), nrm, vt.zeros_like(nrm))
        den = nrm.unsqueeze(2) * nrm.unsqueeze(1)
        off = vt.where(den > 0, gram / vt.where(den > 0, den, vt.ones_like(den)), vt.zeros_like(den))
        off = off * (1 - vt.eye(N, dtype=dt, device=dev))
        if float(off.amax()) <= tol:
            break
    if N != n:
        G, V = G[:, :, :n], V[:, :n, :n]
    S = (G * G).sum(1).sqrt()
    S, idx = vt.sort(S, dim=-1, descending=True)
    G = G.gather(2, idx.unsqueeze(1).expand(Bt, m, n))
    V = V.gather(2, idx.unsqueeze(1).expand(Bt, n, n))
    Sd = S.unsqueeze(1)
    U = vt.where(Sd > 0, G / vt.where(Sd > 0, Sd, vt.ones_like(Sd)), vt.zeros_like(G))
    return U, S.contiguous(), V


def _complete(U, S, full):
    """Fill U's zero columns (zero singular values, which sort last) and, when full, append m-k columns, so U is
    orthogonal: the columns of a complete QR of U, signed to match U's nonzero columns. Columns of singular values
    at rounding level of the largest count as zero (their directions are noise)."""
    vt = _vt()
    Bt, m, k = U.shape
    big = S > _eps(S.dtype) * max(m, k) * S.amax(1, keepdim=True)
    if not (full and m > k) and bool(big.all()):
        return U
    Q, R = qr(U, mode="complete")
    d = R.diagonal(dim1=-2, dim2=-1)
    d = vt.where(d < 0, -1.0, 1.0).to(U.dtype).unsqueeze(1)
    Uk = vt.where(big.unsqueeze(1), U, Q[:, :, :k] * d)
    return vt.cat([Uk, Q[:, :, k:]], 2) if full and m > k else Uk


def _svd_reduced(A):
    """U (.., m, k), S (.., k), V (.., n, k) of A (.., m, n), k = min(m, n); no grad."""
    m, n = A.shape[-2], A.shape[-1]
    batch = tuple(A.shape[:-2])
    wide = m < n
    A3 = _flat(_mT(A) if wide else A)
    U, S, V = _jacobi_svd(A3)
    U = _complete(U, S, False)
    if wide:
        U, V = V, U
    k = min(m, n)
    return U.reshape(batch + (m, k)), S.reshape(batch + (k,)), V.reshape(batch + (n, k))


class _SVD(Function):
    @staticmethod
    def forward(ctx, A):
        U, S, V = _svd_reduced(A)
        ctx.save_for_backward(U, S, V)
        return U, S, V

    @staticmethod
    def backward(ctx, gU, gS, gV):
        U, S, V = ctx.saved_tensors
        vt = _vt()
        with no_grad():
            # A = U S V^T: gA = U (diag(gS) + (J + J^T) S + S (K + K^T)) V^T + the parts of gU, gV outside the
            # spans of U, V; J = F o (U^T gU), K = F o (V^T gV), F_ij = 1 / (s_j^2 - s_i^2) off the diagonal
            k = S.shape[-1]
            eye = vt.eye(k, dtype=S.dtype, device=S.device)
            s2 = S * S
            E = s2.unsqueeze(-2) - s2.unsqueeze(-1)
            F = (1 - eye) / (E + eye)
            Sm = S.diag_embed()
            inner = gS.diag_embed() if gS is not None else vt.zeros_like(Sm)
            Sinv = vt.where(S > 0, 1 / vt.where(S > 0, S, vt.ones_like(S)), vt.zeros_like(S))
            out = 0
            if gU is not None:
                J = F * (_mT(U) @ gU)
                inner = inner + (J + _mT(J)) @ Sm
                # (I - U U^T) gU S^-1 V^T
                out = out + ((gU - U @ (_mT(U) @ gU)) * Sinv.unsqueeze(-2)) @ _mT(V)
            if gV is not None:
                K = F * (_mT(V) @ gV)
                inner = inner + Sm @ (K + _mT(K))
                out = out + (U * Sinv.unsqueeze(-2)) @ _mT(gV - V @ (_mT(V) @ gV))
            return U @ inner @ _mT(V) + out


def svd(A, full_matrices=True, *, driver=None):
    """A = U diag(S) Vh with S descending; signs of U / Vh columns are arbitrary (as in torch). With
    full_matrices and a non-square A, the completing columns carry no gradient."""
    _check_float(A, "linalg.svd")
    vt = _vt()
    m, n = A.shape[-2], A.shape[-1]
    if A.numel() == 0:
        batch = tuple(A.shape[:-2])
        k = min(m, n)
        ku, kv = (m, n) if full_matrices else (k, k)
        U = vt.eye(m, ku, dtype=A.dtype, device=A.device).expand(batch + (m, ku)).clone()
        Vh = vt.eye(kv, n, dtype=A.dtype, device=A.device).expand(batch + (kv, n)).clone()
        return SVD(U, vt.zeros(batch + (k,), dtype=A.dtype, device=A.device), Vh)
    U, S, V = _SVD.apply(A)
    if full_matrices and m != n:
        batch = tuple(A.shape[:-2])
        with no_grad():
            if m > n:
                Uf = _complete(_flat(U.detach()), S.detach().reshape(-1, n), True)
                U = vt.cat([U, Uf[:, :, n:].reshape(batch + (m, m - n))], -1)
            else:
                Vf = _complete(_flat(V.detach()), S.detach().reshape(-1, m), True)
                V = vt.cat([V, Vf[:, :, m:].reshape(batch + (n, n - m))], -1)
    return SVD(U, S, _mT(V))


def svdvals(A, *, driver=None):
    _check_float(A, "linalg.svdvals")
    return svd(A, full_matrices=False).S


def torch_svd(input, some=True, compute_uv=True):
    """torch.svd: (U, S, V) with V not transposed; compute_uv=False gives S and zero-filled square U and V like
    torch."""
    vt = _vt()
    if not compute_uv:
        m, n = input.shape[-2], input.shape[-1]
        batch = tuple(input.shape[:-2])
        z = dict(dtype=input.dtype, device=input.device)
        return TorchSVD(vt.zeros(batch + (m, m), **z), svdvals(input), vt.zeros(batch + (n, n), **z))
    U, S, Vh = svd(input, full_matrices=not some)
    return TorchSVD(U, S, _mT(Vh))


# ---- built on the singular values -----------------------------------------------------------------------------

def _tolerance(S, atol, rtol, m, n, name):
    """max(atol, rtol * s_max) per batch element, torch's defaults (rtol = eps * max(m, n) unless atol > 0)."""
    vt = _vt()
    if rtol is None:
        rtol = 0.0 if (atol is not None and not (isinstance(atol, (int, float)) and atol <= 0)) \
            else _eps(S.dtype) * max(m, n)
    if atol is None:
        atol = 0.0
    smax = S.amax(-1, keepdim=True) if S.shape[-1] else vt.zeros(tuple(S.shape[:-1]) + (1,), dtype=S.dtype,
                                                                 device=S.device)
    at = atol.unsqueeze(-1) if isinstance(atol, Tensor) else atol
    rt = rtol.unsqueeze(-1) if isinstance(rtol, Tensor) else rtol
    return vt.maximum(at * vt.ones_like(smax), rt * smax)


def pinv(A, *, atol=None, rtol=None, hermitian=False, rcond=None):
    """Moore-Penrose pseudo-inverse: V diag(1/s for s > tol) U^T (eigh for hermitian inputs)."""
    vt = _vt()
    _check_float(A, "linalg.pinv")
    if rcond is not None:
        if rtol is not None:
            raise RuntimeError("linalg.pinv: rcond and rtol cannot both be given")
        rtol = rcond
    m, n = A.shape[-2], A.shape[-1]
    if A.numel() == 0:
        return vt.zeros(tuple(A.shape[:-2]) + (n, m), dtype=A.dtype, device=A.device)
    if hermitian:
        _check_square(A, "linalg.pinv")
        w, Q = eigh(A)
        tol = _tolerance(w.abs(), atol, rtol, m, n, "linalg.pinv")
        keep = w.abs() > tol
        winv = vt.where(keep, 1 / vt.where(keep, w, vt.ones_like(w)), vt.zeros_like(w))
        return (Q * winv.unsqueeze(-2)) @ _mT(Q)
    U, S, Vh = svd(A, full_matrices=False)
    tol = _tolerance(S, atol, rtol, m, n, "linalg.pinv")
    keep = S > tol
    sinv = vt.where(keep, 1 / vt.where(keep, S, vt.ones_like(S)), vt.zeros_like(S))
    return (_mT(Vh) * sinv.unsqueeze(-2)) @ _mT(U)


def pinverse(input, rcond=1e-15):
    """torch.pinverse: pinv with rcond as the relative tolerance."""
    return pinv(input, rtol=rcond)


def matrix_rank(A, tol=None, hermitian=False, *, atol=None, rtol=None):
    vt = _vt()
    _check_float(A, "linalg.matrix_rank")
    if tol is not None:
        if atol is not None or rtol is not None:
            raise RuntimeError("linalg.matrix_rank: tol cannot be given together with atol or rtol")
        atol, rtol = tol, 0.0
    m, n = A.shape[-2], A.shape[-1]
    if A.numel() == 0:
        return vt.zeros(tuple(A.shape[:-2]), dtype=vt.int64, device=A.device)
    with no_grad():
        S = eigvalsh(A).abs() if hermitian else svdvals(A)
        return (S > _tolerance(S, atol, rtol, m, n, "linalg.matrix_rank")).sum(-1)


def _matrix_norm(A, p):
    from .linalg import matrix_norm
    if p == "nuc":
        return svdvals(A).sum(-1)
    return matrix_norm(A, p)


def cond(A, p=None):
    """Condition number: s_max / s_min for p None / 2 (s_min / s_max for -2), else norm(A, p) norm(A^-1, p)."""
    _check_float(A, "linalg.cond")
    if p in (None, 2, -2):
        S = svdvals(A)
        return S[..., 0] / S[..., -1] if p != -2 else S[..., -1] / S[..., 0]
    if p not in ("fro", "nuc", 1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    _check_square(A, "linalg.cond")
    vt = _vt()
    with no_grad():  # like torch, a singular element (an exact zero pivot) gets inf, not an error
        n = A.shape[-1]
        sing = (_lu_core(_flat(A.detach()))[0].diagonal(dim1=-2, dim2=-1) == 0).any(1).reshape(tuple(A.shape[:-2]))
    nA = _matrix_norm(A, p)
    if not bool(sing.any()):
        return nA * _matrix_norm(inv(A), p)
    mask = sing.unsqueeze(-1).unsqueeze(-1)
    safe = vt.where(mask, vt.eye(n, dtype=A.dtype, device=A.device), A)
    # torch: inf for the singular ones, except 'nuc', which goes through 0 * inf = nan for a zero matrix
    bad = nA * math.inf if p == "nuc" else math.inf
    return vt.where(sing, bad, nA * _matrix_norm(inv(safe), p))


def matrix_power(A, n):
    """A^n by repeated squaring; a negative n inverts A first, n = 0 gives the identity."""
    vt = _vt()
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but they are "
                           f"{A.shape[-2] if A.dim() >= 2 else 1} by {A.shape[-1] if A.dim() else 1} matrices")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"matrix_power(): argument 'n' must be int, not {type(n).__name__}")
    if n == 0:
        return vt.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand(tuple(A.shape)).clone()
    if n < 0:
        A, n = inv(A), -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result


# Higham's Pade 13 coefficients for exp (2005) and the 1-norm bound theta_13 under which no scaling is needed
_PADE13 = (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800., 129060195264000.,
           10559470521600., 670442572800., 33522128640., 1323241920., 40840800., 960960., 16380., 182., 1.)
_THETA13 = 5.371920351148152


def matrix_exp(A):
    """exp(A) by scaling and squaring with the Pade 13 approximant; one host read picks the scaling over the
    batch. Differentiable by composition."""
    vt = _vt()
    _check_square(A, "linalg.matrix_exp")
    if A.numel() == 0:
        return A.clone()
    with no_grad():
        nrm = float(A.abs().sum(-2).amax())
    s = max(0, int(math.ceil(math.log2(nrm / _THETA13)))) if nrm > 0 else 0
    X = A / (2 ** s) if s else A
    b = _PADE13
    eye = vt.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    X2 = X @ X
    X4 = X2 @ X2
    X6 = X4 @ X2
    W = X6 @ (b[13] * X6 + b[11] * X4 + b[9] * X2) + b[7] * X6 + b[5] * X4 + b[3] * X2 + b[1] * eye
    U = X @ W
    V = X6 @ (b[12] * X6 + b[10] * X4 + b[8] * X2) + b[6] * X6 + b[4] * X4 + b[2] * X2 + b[0] * eye
    R = solve(V - U, V + U)
    for _ in range(s):
        R = R @ R
    return R


def cross(input, other, *, dim=-1):
    """Cross product of 3-vectors along dim, broadcasting input and other."""
    vt = _vt()
    if input.dtype != other.dtype:
        raise RuntimeError(f"expected scalar type {_scalar_name(input.dtype)} but found {_scalar_name(other.dtype)}")
    if input.dim() != other.dim():
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {input.shape[dim]} and "
                           f"{other.shape[dim]}")
    shape = tuple(vt.broadcast_shapes(tuple(input.shape), tuple(other.shape)))
    a, b = input.expand(shape), other.expand(shape)
    a0, a1, a2 = (a.select(dim, i) for i in range(3))
    b0, b1, b2 = (b.select(dim, i) for i in range(3))
    return vt.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim)


def _scalar_name(dtype):  # torch's ScalarType names in its messages: Float, Long, BFloat16, ...
    return {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
            "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}[str(dtype).split(".")[-1]]


def torch_cross(input, other, dim=None):
    """torch.cross: linalg.cross, except that with no dim it takes the first dimension of size 3 (and warns, as
    torch does, that this default is deprecated)."""
    if dim is None:
        import warnings
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\nPlease either pass the dim "
                      "explicitly or simply use torch.linalg.cross.\nThe default value of dim will change to agree "
                      "with that of linalg.cross in a future release.", UserWarning, stacklevel=2)
        dim = next((i for i, n in enumerate(input.shape) if n == 3), None)  # input's sizes, as torch
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    return cross(input, other, dim=dim)


def vecdot(x, y, *, dim=-1):
    """Sum of x * y over dim (real inputs), broadcasting."""
    if x.dtype != y.dtype:
        raise RuntimeError(f"linalg.vecdot: Expected x and y to have the same dtype, but found x of type {x.dtype} "
                           f"and y of type {y.dtype} instead.")
    return (x * y).sum(dim)


# out= with torch's rules for out arguments (Note [out= by copy]), on every function here that torch gives it
from . import _out  # noqa: E402

torch_svd.__name__ = "svd"  # torch's name, for out='s messages
for _name in ("svd", "svdvals", "torch_svd", "pinv", "matrix_rank", "cond", "matrix_power", "cross", "vecdot"):
    globals()[_name] = _out.accepts_out(globals()[_name])
