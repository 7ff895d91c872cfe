"""vt.trapezoid / vt.trapz / vt.cumulative_trapezoid, torch's: the trapezoidal rule along `dim` with sample
points `x` (1-D along dim, or broadcastable to y) or a constant spacing `dx` (default 1), in torch's arithmetic
(so integer y gives a floating result and one sample gives zero); an empty dim gives zeros with it removed
(cumulative_trapezoid: kept).
Composed from differentiable vt ops. Metric code integrates ROC and PR curves with these."""
from .._C import core as _core
from . import _functions as F


def _check(name, y, x, dx):
    if x is not None and not isinstance(x, _core.Tensor):
        raise TypeError(f"{name}() received an invalid combination of arguments - got (Tensor, "
                        f"{type(x).__name__}), but expected one of:\n * (Tensor y, Tensor x, *, int dim = -1)\n"
                        f" * (Tensor y, *, Number dx = 1, int dim = -1)\n")
    if x is not None and dx is not None:
        raise TypeError(f"{name}() received an invalid combination of arguments - got (Tensor, Tensor, dx="
                        f"{type(dx).__name__}), but expected one of:\n * (Tensor y, Tensor x, *, int dim = -1)\n"
                        f" * (Tensor y, *, Number dx = 1, int dim = -1)\n")
    if y.dtype == _core.dtype.bool:
        raise RuntimeError(f"{name}: received a bool input for `y`, but bool is not supported")
    if isinstance(dx, (bool, complex)):
        raise RuntimeError(f"{name} does not support complex or boolean dx")


def _spacing(name, y, x, dim):
    """x's differences along dim, shaped to broadcast against y's."""
    if x.dtype == _core.dtype.bool:
        raise RuntimeError(f"{name}: received a bool input for `x`, but bool is not supported")
    if x.dim() == 1:
        if x.shape[0] != y.shape[dim]:
            raise RuntimeError(f"{name}: There must be one `x` value for each sample point")
        shape = [1] * y.dim()
        shape[dim] = x.shape[0]
        x = x.reshape(shape)
    elif x.dim() < y.dim():
        x = x.reshape([1] * (y.dim() - x.dim()) + list(x.shape))
    n = x.shape[dim]
    return x.narrow(dim, 1, n - 1) - x.narrow(dim, 0, n - 1)


def _empty_along(y, dim):
    shape = [s for i, s in enumerate(y.shape) if i != dim]
    return F.zeros(shape, dtype=y.dtype, device=y.device)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    _check("trapezoid", y, x, dx)
    dim = dim % y.dim() if y.dim() else dim
    n = y.shape[dim]
    if n == 0:
        return _empty_along(y, dim)
    if x is None:
        step = 1 if dx is None else dx
        # torch's form: the sum less half the two end points, times the spacing
        return (y.sum(dim) - (y.select(dim, 0) + y.select(dim, -1)) * 0.5) * step
    d = _spacing("trapezoid", y, x, dim)
    return (d * (y.narrow(dim, 0, n - 1) + y.narrow(dim, 1, n - 1))).sum(dim) / 2.0


def trapz(y, x=None, *, dx=None, dim=-1):
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    _check("cumulative_trapezoid", y, x, dx)
    dim = dim % y.dim() if y.dim() else dim
    n = y.shape[dim]
    if n == 0:  # torch keeps the empty dim here (its cumulative sum of nothing)
        return y.narrow(dim, 0, 0) * 0.5
    left, right = y.narrow(dim, 0, n - 1), y.narrow(dim, 1, n - 1)
    if x is None:
        step = 1 if dx is None else dx
        return (step / 2.0 * (left + right)).cumsum(dim)
    d = _spacing("cumulative_trapezoid", y, x, dim)
    return (d * (left + right) / 2.0).cumsum(dim)
