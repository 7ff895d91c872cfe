"""vt.linalg: the norms that compose from reductions: vector_norm, matrix_norm ('fro', inf, -inf, 1, -1) and
norm. The orders that need singular values (2, -2, 'nuc') are NotImplementedError: vibetensor has no SVD."""
from __future__ import annotations

import builtins
import math

from .._C import core as _core
from . import _functions as F

Tensor = _core.Tensor
_norm = _core.op("vt::norm")


def _float_input(x, dtype, name):
    if dtype is not None:
        x = x.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"linalg.{name}: Expected a floating point or complex tensor as input. Got {x.dtype}")
    return x


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    x = _float_input(x, dtype, "vector_norm")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    dims = None if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    if x.numel() == 0 and (ord < 0 or ord == math.inf):
        raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor because the "
                           "operation does not have an identity")
    if dims is None and not keepdim:
        return _norm(x.flatten(), ord, [0], False) if x.dim() != 1 else _norm(x, ord, [0], False)
    if dims is None:  # keepdim over every dim
        dims = list(range(x.dim()))
    if not dims and x.dim() == 0:
        return _norm(x.reshape(1), ord, [0], False).reshape([])
    return _norm(x, ord, dims, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    A = _float_input(A, dtype, "matrix_norm")
    if A.dim() < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    d0, d1 = (F._wrap(d, A.dim()) for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return _norm(A, 2, [d0, d1], keepdim)
    if ord in (2, -2, "nuc"):
        raise NotImplementedError(f"linalg.matrix_norm: ord={ord!r} needs singular values, which vibetensor lacks")
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    # 1 / -1: the largest / smallest column abs-sum (sum over rows); inf / -inf: the same over rows
    sum_dim, red_dim = (d0, d1) if ord in (1, -1) else (d1, d0)
    s = A.abs().sum(sum_dim, keepdim=True)
    out = F.amax(s, red_dim, keepdim=True) if ord > 0 else F.amin(s, red_dim, keepdim=True)
    return out if keepdim else out.squeeze(builtins.max(d0, d1)).squeeze(builtins.min(d0, d1))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    if dim is not None and not isinstance(dim, int) and len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is None and ord is not None:
        if A.dim() == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
        if A.dim() != 1:
            raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                               f"Got {A.dim()}D.")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.norm: order {ord} not supported for a vector norm")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)

from ._math_functions import multi_dot  # noqa: E402,F401
from ._linalg_factor import (  # noqa: E402,F401
    LinAlgError, solve, inv, lu_factor, lu_solve, det, slogdet, cholesky, cholesky_ex, solve_triangular, qr, lstsq,
    eigh, eigvalsh)
from ._linalg_lu import lu, lu_factor_ex  # noqa: E402,F401
from ._linalg_svd import (  # noqa: E402,F401
    svd, svdvals, pinv, matrix_rank, cond, matrix_power, matrix_exp, cross, vecdot)


def _attach_tensor_methods():
    """torch's Tensor methods over these functions: A.det(), A.inverse(), A.svd(), A.cholesky(), A.qr() ..."""
    from .._C import core as _core
    from . import _linalg_factor as LF
    from . import _linalg_svd as LS

    def qr_method(self, some=True):  # torch.qr's (deprecated) some= spelling of mode
        return LF.qr(self, "reduced" if some else "complete")

    methods = {
        "det": LF.det, "logdet": LF.logdet, "slogdet": LF.slogdet, "inverse": LF.inv,
        "cholesky": lambda self, upper=False: LF.cholesky(self, upper=upper),
        "cholesky_solve": lambda self, input2, upper=False: LF.cholesky_solve(self, input2, upper),
        "cholesky_inverse": lambda self, upper=False: LF.cholesky_solve(
            _eye_like(self), self, upper),
        "qr": qr_method, "svd": LS.torch_svd, "pinverse": LS.pinverse, "matrix_power": LS.matrix_power,
        "matrix_exp": LS.matrix_exp,
    }
    for name, fn in methods.items():
        setattr(_core.Tensor, name, fn)


def _eye_like(A):
    from . import _functions as F

    n = A.shape[-1]
    return F.eye(n, dtype=A.dtype, device=A.device).expand(tuple(A.shape[:-2]) + (n, n))


_attach_tensor_methods()
