"""The LU family built on _linalg_factor's partial-pivoting kernel, differentiable like torch (its closed-form
rule for square inputs): linalg.lu (unpacked P, L, U), linalg.lu_factor / lu_factor_ex (packed LU, 1-based int32
pivots; lu_factor raises torch's error on an exactly singular U, lu_factor_ex reports it in info), the
deprecated torch.lu (LU, pivots[, infos]) still found in flow code, and torch.lu_unpack (any m x n; L and U
differentiable through tril/triu). Rectangular factorizations and pivot=False are NotImplementedError (torch
supports both: pivot=False only on CUDA)."""
from __future__ import annotations

import collections
import warnings

from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from . import _linalg_factor as LF

LU = collections.namedtuple("linalg_lu", ["P", "L", "U"])
LU_unpack = collections.namedtuple("lu_unpack", ["P", "L", "U"])
LU_factor_ex = collections.namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LU_with_info = collections.namedtuple("_lu_with_info", ["LU", "pivots", "info"])


def _factor(A):
    """packed LU, 0-based pivots (Bt, n) and P, L, U, all shaped like A (no autograd)."""
    vt = LF._vt()
    n = A.shape[-1]
    packed, piv, perm = LF._lu_core(LF._flat(A))
    eye = vt.eye(n, dtype=A.dtype, device=A.device)
    # (P_row A)[i] = A[perm[i]], so P_row = eye[perm] and torch's P (A = P L U) is its transpose
    P = LF._mT(eye[perm]).reshape(tuple(A.shape))
    L = (packed.tril(-1) + eye).reshape(tuple(A.shape))
    U = packed.triu().reshape(tuple(A.shape))
    return packed.reshape(tuple(A.shape)), piv, P, L, U


def _lu_backward(P, L, U, gL, gU):
    # gA = P L^-T [tril_-1(L^T gL) + triu(gU U^T)] U^-T (torch's linalg_lu_backward for m == n)
    with no_grad():
        phi = (LF._mT(L) @ gL).tril(-1) + (gU @ LF._mT(U)).triu()
        x = LF.solve_triangular(LF._mT(L), phi, upper=True, unitriangular=True)
        x = LF.solve_triangular(LF._mT(U), x, upper=False, left=False)
        return P @ x


class _LU(Function):
    @staticmethod
    def forward(ctx, A):
        _, _, P, L, U = _factor(A)
        ctx.save_for_backward(P, L, U)
        ctx.mark_non_differentiable(P)
        return P, L, U

    @staticmethod
    def backward(ctx, *grads):
        gL, gU = grads[-2], grads[-1]  # the non-differentiable P gets no gradient slot
        P, L, U = ctx.saved_tensors
        vt = LF._vt()
        return _lu_backward(P, L, U, vt.zeros_like(L) if gL is None else gL, vt.zeros_like(U) if gU is None else gU)


class _LUFactor(Function):
    @staticmethod
    def forward(ctx, A):
        packed, piv, P, L, U = _factor(A)
        pivots = (piv + 1).to(LF._vt().int32).reshape(tuple(A.shape[:-1]))
        ctx.save_for_backward(P, L, U)
        ctx.mark_non_differentiable(pivots)
        return packed, pivots

    @staticmethod
    def backward(ctx, gLU, *rest):
        P, L, U = ctx.saved_tensors
        # the packed LU holds L's strict lower and U's upper triangle
        return _lu_backward(P, L, U, gLU.tril(-1), gLU.triu())


def _check_factor_input(A, name):
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got {A.dtype}")
    if A.dim() < 2:
        raise RuntimeError(f"{name}: The input tensor A must have at least 2 dimensions.")


def lu(A, *, pivot=True):
    """(P, L, U) with A = P @ L @ U, L unit lower-triangular and U upper-triangular, like torch.linalg.lu."""
    _check_factor_input(A, "linalg.lu")
    if not pivot:
        raise NotImplementedError("linalg.lu: pivot=False is not supported")
    if A.shape[-1] != A.shape[-2]:
        raise NotImplementedError("linalg.lu: only square matrices are supported")
    return LU(*_LU.apply(A))


def _info(packed):
    """LAPACK's info per matrix: 1 + the index of the first zero on U's diagonal, 0 when there is none."""
    vt = LF._vt()
    n = packed.shape[-1]
    zero = packed.diagonal(dim1=-2, dim2=-1) == 0
    first = vt.where(zero, vt.arange(1, n + 1, device=packed.device), n + 1).amin(-1) if n else zero.sum(-1)
    return vt.where(first > n, 0, first).to(vt.int32)


def lu_factor_ex(A, *, pivot=True, check_errors=False):
    """(LU, pivots, info) like torch.linalg.lu_factor_ex: info > 0 marks an exactly singular U."""
    name = "torch.linalg.lu_factor_ex" if check_errors else "linalg.lu_factor_ex"
    _check_factor_input(A, name)
    if not pivot:
        raise NotImplementedError("linalg.lu_factor_ex: pivot=False is not supported")
    if A.shape[-1] != A.shape[-2]:
        raise NotImplementedError("linalg.lu_factor_ex: only square matrices are supported")
    packed, pivots = _LUFactor.apply(A)
    with no_grad():
        info = _info(packed)
    if check_errors:
        _raise_singular(info, name)
    return LU_factor_ex(packed, pivots, info)


def _raise_singular(info, name):
    if bool((info > 0).any()):  # one host read, for the message only
        flat = info.reshape(-1)
        b = int((flat > 0).int().argmax())
        i = int(flat[b])
        prefix = f"(Batch element {b}): " if flat.numel() > 1 else ""
        raise RuntimeError(f"{name}: {prefix}U[{i},{i}] is zero and using it on lu_solve would result in a division "
                           "by zero. If you still want to perform the factorization, consider calling "
                           "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")


def lu_factor(A, *, pivot=True):
    """(LU, pivots) with 1-based int32 pivots, like torch.linalg.lu_factor (raises on an exactly singular U)."""
    LU_, pivots, info = lu_factor_ex(A, pivot=pivot)
    with no_grad():
        _raise_singular(info, "torch.linalg.lu_factor")
    return LF.LU_factor(LU_, pivots)


_warned_lu = False


def torch_lu(A, pivot=True, get_infos=False, out=None):
    """The deprecated torch.lu: (LU, pivots), or (LU, pivots, infos) with get_infos; never raises on singular
    input, warns once like torch."""
    global _warned_lu
    if out is not None:
        raise NotImplementedError("torch.lu: out= is not supported")
    if not _warned_lu:
        _warned_lu = True
        warnings.warn("torch.lu is deprecated in favor of torch.linalg.lu_factor / torch.linalg.lu_factor_ex and "
                      "will be removed in a future PyTorch release.", UserWarning, stacklevel=2)
    LU_, pivots, info = lu_factor_ex(A, pivot=pivot)
    return LU_with_info(LU_, pivots, info) if get_infos else (LU_, pivots)


def _pivots_to_permutation(pivots, m):
    """torch's P (m x m, A = P L U) from 1-based sequential row swaps pivots (..., k)."""
    vt = LF._vt()
    batch = tuple(pivots.shape[:-1])
    Bt = 1
    for d in batch:
        Bt *= d
    piv = pivots.reshape(Bt, pivots.shape[-1]).long() - 1
    ar = vt.arange(m, device=pivots.device).view(1, m).expand(Bt, m)
    perm = ar.clone()
    for i in range(piv.shape[-1]):  # the swaps in order: row i <-> row piv[i]
        p = piv[:, i:i + 1]
        perm = perm.gather(1, vt.where(ar == i, p, vt.where(ar == p, i, ar)))
    return perm, batch, Bt


def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    """(P, L, U) from linalg.lu_factor's output, like torch.lu_unpack; an unrequested part is an empty tensor."""
    vt = LF._vt()
    if LU_data.dim() < 2:
        raise RuntimeError(f"torch.lu_unpack: Expected tensor with 2 or more dimensions. Got size: "
                           f"{list(LU_data.shape)} instead")
    if LU_pivots.dtype != vt.int32:
        raise RuntimeError("torch.lu_unpack: LU_pivots is expected to be a contiguous tensor of torch.int32 dtype.\n"
                           "Note: this function is intended to be used with the output produced by "
                           "torch.linalg.lu_factor")
    m, n = LU_data.shape[-2], LU_data.shape[-1]
    k = min(m, n)
    if tuple(LU_pivots.shape) != tuple(LU_data.shape[:-2]) + (k,):
        raise RuntimeError(f"torch.lu_unpack: Expected LU_pivots of shape {list(LU_data.shape[:-2]) + [k]}, "
                           f"got {list(LU_pivots.shape)}")
    empty = vt.empty(0, dtype=LU_data.dtype, device=LU_data.device)
    L = U = P = empty
    if unpack_data:
        eye = vt.eye(m, k, dtype=LU_data.dtype, device=LU_data.device)
        L = LU_data[..., :, :k].tril(-1) + eye
        U = LU_data[..., :k, :].triu()
    if unpack_pivots:
        with no_grad():
            perm, batch, Bt = _pivots_to_permutation(LU_pivots, m)
            eye = vt.eye(m, dtype=LU_data.dtype, device=LU_data.device)
            P = LF._mT(eye[perm]).reshape(batch + (m, m))
    return LU_unpack(P, L, U)
