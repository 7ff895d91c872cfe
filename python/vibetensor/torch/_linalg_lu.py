"""vt.linalg.lu: the unpacked partial-pivoting LU factorization A = P L U of square matrices (batched), as torch
returns it (a namedtuple linalg_lu(P, L, U)), differentiable with torch's closed-form rule for square inputs,
and torch.lu_unpack, which unpacks linalg.lu_factor's (LU, pivots) (any m x n; L and U differentiable through
tril/triu). Built on _linalg_factor's LU kernel; linalg.lu of rectangular inputs and pivot=False are
NotImplementedError (torch supports both: pivot=False only on CUDA)."""
from __future__ import annotations

import collections

from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from . import _linalg_factor as LF

LU = collections.namedtuple("linalg_lu", ["P", "L", "U"])
LU_unpack = collections.namedtuple("lu_unpack", ["P", "L", "U"])


class _LU(Function):
    @staticmethod
    def forward(ctx, A):
        vt = LF._vt()
        n = A.shape[-1]
        packed, _, perm = LF._lu_core(LF._flat(A))
        eye = vt.eye(n, dtype=A.dtype, device=A.device)
        # (P_row A)[i] = A[perm[i]], so P_row = eye[perm] and torch's P (A = P L U) is its transpose
        P = LF._mT(eye[perm]).reshape(tuple(A.shape))
        L = (packed.tril(-1) + eye).reshape(tuple(A.shape))
        U = packed.triu().reshape(tuple(A.shape))
        ctx.save_for_backward(P, L, U)
        ctx.mark_non_differentiable(P)
        return P, L, U

    @staticmethod
    def backward(ctx, *grads):
        gL, gU = grads[-2], grads[-1]  # the non-differentiable P gets no gradient slot
        P, L, U = ctx.saved_tensors
        vt = LF._vt()
        with no_grad():
            gL = vt.zeros_like(L) if gL is None else gL
            gU = vt.zeros_like(U) if gU is None else gU
            # gA = P L^-T [tril_-1(L^T gL) + triu(gU U^T)] U^-T (torch's linalg_lu_backward for m == n)
            phi = (LF._mT(L) @ gL).tril(-1) + (gU @ LF._mT(U)).triu()
            x = LF.solve_triangular(LF._mT(L), phi, upper=True, unitriangular=True)
            x = LF.solve_triangular(LF._mT(U), x, upper=False, left=False)
            return P @ x


def lu(A, *, pivot=True):
    """(P, L, U) with A = P @ L @ U, L unit lower-triangular and U upper-triangular, like torch.linalg.lu."""
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"linalg.lu: Expected a floating point or complex tensor as input. Got {A.dtype}")
    if A.dim() < 2:
        raise RuntimeError("linalg.lu: The input tensor A must have at least 2 dimensions.")
    if not pivot:
        raise NotImplementedError("linalg.lu: pivot=False is not supported")
    if A.shape[-1] != A.shape[-2]:
        raise NotImplementedError("linalg.lu: only square matrices are supported")
    return LU(*_LU.apply(A))


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
