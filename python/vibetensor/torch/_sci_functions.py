"""Two functions scientific code still calls: torch.triangular_solve (the deprecated form of
linalg.solve_triangular: arguments reversed, a (solution, cloned_coefficient) result, torch's deprecation warning
once) with its Tensor method, and torch.vander (columns x^(N-1) .. x^0, or increasing, by a cumulative product as
torch computes them)."""
from __future__ import annotations

import collections

from .._C import core as _core
from . import _functions as F

Tensor = _core.Tensor
_dt = _core.dtype

triangular_solve_result = collections.namedtuple("triangular_solve", ["solution", "cloned_coefficient"])
_warned = []


def triangular_solve(input, A, upper=True, transpose=False, unitriangular=False):
    """X with op(A) X = input, op(A) = A or A^T; A triangular (upper by default, as torch's)."""
    from ._linalg_factor import solve_triangular

    if not _warned:
        import warnings

        _warned.append(True)
        warnings.warn("torch.triangular_solve is deprecated in favor of torch.linalg.solve_triangular"
                      "and will be removed in a future PyTorch release.\ntorch.linalg.solve_triangular has its "
                      "arguments reversed and does not return a copy of one of the inputs.\n"
                      "X = torch.triangular_solve(B, A).solution\nshould be replaced with\n"
                      "X = torch.linalg.solve_triangular(A, B).", UserWarning, stacklevel=2)
    for name, t in (("b", input), ("A", A)):
        if t.dim() < 2:
            raise RuntimeError(f"torch.triangular_solve: Expected {name} to have at least 2 dimensions, but it has "
                               f"{t.dim()} dimensions instead")
    shape = F.broadcast_shapes(tuple(A.shape[:-2]), tuple(input.shape[:-2]))
    a = A.expand(*shape, *A.shape[-2:])
    b = input.expand(*shape, *input.shape[-2:])
    op_a = a.transpose(-2, -1) if transpose else a
    x = solve_triangular(op_a, b, upper=upper != transpose, unitriangular=unitriangular)
    return triangular_solve_result(x, a.clone())


def vander(x, N=None, increasing=False):
    if x.dim() != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    dtype = x.dtype if x.dtype.is_floating_point else _dt.int64  # integers and bools widen to int64, as torch
    cols = [F.ones(x.shape[0], 1, dtype=dtype, device=x.device)] if n > 0 else []
    if n > 1:
        cols.append(x.to(dtype).unsqueeze(1).expand(x.shape[0], n - 1).cumprod(1))
    out = F.cat(cols, 1) if cols else F.empty(x.shape[0], 0, dtype=dtype, device=x.device)
    return out if increasing else out.flip(1)


Tensor.triangular_solve = lambda self, A, upper=True, transpose=False, unitriangular=False: triangular_solve(
    self, A, upper, transpose, unitriangular)
