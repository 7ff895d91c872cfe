"""torch's small linear-algebra helpers over matmul and reductions (they run on any device and differentiate
through their parts): renorm, dist, dot, vdot, mv, addmv, trace, tensordot, multi_dot / chain_matmul. Their
Tensor methods are attached with the math functions' (_math_functions.py)."""
from __future__ import annotations

import builtins
import math
import numbers

from .._C import core as _core
from . import _functions as F

Tensor = _core.Tensor
_dt = _core.dtype


# ----------------------------------------------------------------------------------- norms and products
def renorm(input, p, dim, maxnorm):
    """Each slice along `dim` whose p-norm exceeds maxnorm is scaled down to norm maxnorm."""
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"renorm: expected a floating point input, got {input.dtype}")
    if p <= 0:
        raise RuntimeError(f"renorm: non-positive-norm not supported (p = {p})")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    if input.dim() <= 1:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {input.dim()} dimensions")
    d = F._wrap(dim, input.dim())
    others = [i for i in range(input.dim()) if i != d]
    from .linalg import vector_norm

    norms = vector_norm(input, p, dim=others, keepdim=True)
    factor = F.where(norms > maxnorm, maxnorm / (norms + 1e-7), F.ones_like(norms))
    return input * factor


def dist(input, other, p=2):
    from .linalg import vector_norm

    return vector_norm(input - other, p)


def _check_vectors(name, a, b):
    if a.dim() != 1 or b.dim() != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.dim()}D and {b.dim()}D tensors")
    if a.dtype != b.dtype:
        raise RuntimeError(f"{name}: expected both vectors to have same dtype, but found {a.dtype} and {b.dtype}")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to "
                           "have the same number of elements, but got "
                           f"{a.shape[0]} and {b.shape[0]} elements respectively")


def dot(input, other):
    _check_vectors("dot", input, other)
    return (input * other).sum()


def vdot(input, other):
    """Real dtypes only: the conjugate is the identity."""
    _check_vectors("vdot", input, other)
    return (input * other).sum()


def mv(input, vec):
    if input.dim() != 2 or vec.dim() != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.dim()}, {vec.dim()}")
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({input.shape[0]}), mat ({input.shape[0]}x{input.shape[1]}), "
                           f"vec ({vec.shape[0]})")
    return input.mm(vec.unsqueeze(1)).squeeze(1)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    from ._composite_ops import _scaled_sum

    return _scaled_sum(input, mv(mat, vec), beta, alpha)


def trace(input):
    if input.dim() != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.dim()}")
    diag = input.diagonal(0, 0, 1)
    if not input.dtype.is_floating_point:
        diag = diag.to(_dt.int64)
    return diag.sum()


def tensordot(a, b, dims=2, out=None):
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, numbers.Integral):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > builtins.min(a.dim(), b.dim()):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        da, db = list(range(a.dim() - dims, a.dim())), list(range(dims))
    else:
        if len(dims) != 2:
            raise RuntimeError("tensordot expects dims to be an int or a pair of lists of dims")
        da, db = dims
        da = [da] if isinstance(da, numbers.Integral) else list(da)
        db = [db] if isinstance(db, numbers.Integral) else list(db)
        if len(da) != len(db):
            raise RuntimeError(f"both dimension lists should have same length, got {len(da)} and {len(db)}")
    da = [F._wrap(d, a.dim()) for d in da]
    db = [F._wrap(d, b.dim()) for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[x]} in dim {x} "
                               f"and second has size {b.shape[y]} in dim {y}")
    free_a = [d for d in range(a.dim()) if d not in da]
    free_b = [d for d in range(b.dim()) if d not in db]
    k = math.prod(a.shape[d] for d in da)
    am = a.permute(*free_a, *da).reshape(math.prod(a.shape[d] for d in free_a), k)
    bm = b.permute(*db, *free_b).reshape(k, math.prod(b.shape[d] for d in free_b))
    res = am.mm(bm).reshape(*[a.shape[d] for d in free_a], *[b.shape[d] for d in free_b])
    if out is not None:
        out.copy_(res)
        return out
    return res


def multi_dot(tensors):
    """The product of the matrices left to right; the first and last may be vectors (as torch's)."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    first_vec, last_vec = tensors[0].dim() == 1, tensors[-1].dim() == 1
    mats = list(tensors)
    if first_vec:
        mats[0] = mats[0].unsqueeze(0)
    if last_vec:
        mats[-1] = mats[-1].unsqueeze(1)
    for i, m in enumerate(mats):
        if m.dim() != 2:
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {tensors[i].dim()}D")
    out = mats[0]
    for m in mats[1:]:
        if out.shape[1] != m.shape[0]:
            raise RuntimeError(f"multi_dot(): tensors cannot be multiplied ({out.shape[0]}x{out.shape[1]} and "
                               f"{m.shape[0]}x{m.shape[1]})")
        out = out.mm(m)
    if first_vec:
        out = out.squeeze(0)
    if last_vec:
        out = out.squeeze(-1)
    return out


def chain_matmul(*matrices):
    if len(matrices) == 1 and not isinstance(matrices[0], Tensor):
        matrices = tuple(matrices[0])
    if len(matrices) == 1:
        return matrices[0].clone()
    for i, m in enumerate(matrices):
        if m.dim() != 2:
            raise RuntimeError(f"Tensor dimension is {m.dim()}, expected 2 instead.")
    return multi_dot(matrices)


