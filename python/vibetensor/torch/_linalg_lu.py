"""vt.linalg.lu: the unpacked partial-pivoting LU factorization A = P L U of square matrices (batched), as torch
returns it (a namedtuple linalg_lu(P, L, U)), differentiable with torch's closed-form rule for square inputs.
Built on _linalg_factor's LU kernel; rectangular inputs and pivot=False are NotImplementedError (torch supports
both: pivot=False only on CUDA)."""
from __future__ import annotations

import collections

from ..autograd.function import Function
from ..autograd.grad_mode import no_grad
from . import _linalg_factor as LF

LU = collections.namedtuple("linalg_lu", ["P", "L", "U"])


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
