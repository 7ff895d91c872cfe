"""vt.special, torch.special's names: the special functions of _math_functions and the existing ops under their
scipy-style names, plus the normal distribution's ndtr, ndtri (the inverse of erfc, so tails keep their digits)
and log_ndtr (an asymptotic series far in the lower tail, where erfc underflows)."""
from __future__ import annotations

import math

from .._C import core as _core
from ..autograd.function import Function
from . import _functions as F
from . import _math_functions as M
from ._math_functions import digamma, erfinv, i0, logit, sinc, xlogy  # noqa: F401
from ._igamma import igamma as gammainc, igammac as gammaincc  # noqa: F401

Tensor = _core.Tensor
_dt = _core.dtype
_SQRT2 = math.sqrt(2.0)

digamma = psi = M.digamma
gammaln = M.lgamma
multigammaln = M.mvlgamma


def erf(input):
    return M._as_float(input).erf()


def erfc(input):
    return M._as_float(input).erfc()


def expit(input):
    return M._as_float(input).sigmoid()


def log1p(input):
    return M._as_float(input).log1p()


def expm1(input):
    return M._as_float(input).expm1()


def exp2(input):
    return M._as_float(input).exp2()


def round(input, decimals=0):
    return F.round(input, decimals=decimals)


def logsumexp(input, dim, keepdim=False):
    return F.logsumexp(input, dim, keepdim)


def softmax(input, dim, *, dtype=None):
    return _core.op("vt::softmax")(input, dim, dtype=dtype)


def log_softmax(input, dim, *, dtype=None):
    return _core.op("vt::log_softmax")(input, dim, dtype=dtype)


def ndtr(input):
    """The standard normal CDF, 0.5 erfc(-x / sqrt 2) in float64 (no cancellation in the lower tail, where
    torch's 0.5 (1 + erf) keeps only absolute accuracy)."""
    x = M._as_float(input)
    return ((x.to(_dt.float64) * (-1 / _SQRT2)).erfc() * 0.5).to(x.dtype)


def _ndtri_forward(p):
    p64 = p.to(_dt.float64)
    lower = p64 < 0.5
    q = F.where(lower, p64, 1 - p64)  # the tail probability, <= 0.5; exact in the lower tail
    bad = (p64 < 0) | (p64 > 1) | p64.isnan()
    q = F.where(bad, F.full_like(q, 0.25), q)
    # ndtri(q) = -sqrt2 erfinv(1 - 2q), with 1 - (1 - 2q) = 2q given exactly
    z = M._erfinv_core(1 - 2 * q, 2 * q) * _SQRT2
    z = F.where(lower, -z, z)
    return F.where(bad, F.full_like(z, math.nan), z).to(p.dtype)


class _Ndtri(Function):
    @staticmethod
    def forward(ctx, p):
        out = _ndtri_forward(p)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * math.sqrt(2 * math.pi) * (z * z * 0.5).exp()


def ndtri(input):
    """The inverse of ndtr: -inf at 0, inf at 1, NaN outside [0, 1]."""
    return _Ndtri.apply(M._as_float(input))


_LOWER_TAIL = -20.0  # below it, erfc(-x / sqrt 2) is summed asymptotically (1 / x^2 < 0.0025)


def log_ndtr(input):
    """log(ndtr(x)): log1p(-ndtr(-x)) above 0, log(ndtr(x)) down to -20, and below that the asymptotic
    -x^2/2 - log(-x) - log(2 pi)/2 + log(1 - 1/x^2 + 3/x^4 - ...). Each branch reads its input clamped to its
    range so the branches not taken add no NaN to the gradient. Evaluated in float64 (float32's erfc would
    underflow inside the middle branch)."""
    x = M._as_float(input)
    dtype, x = x.dtype, x.to(_dt.float64)
    upper = x.clamp(min=0)
    middle = x.clamp(_LOWER_TAIL, 0)
    tail = x.clamp(max=_LOWER_TAIL)
    up = (-ndtr(-upper)).log1p()
    mid = ndtr(middle).log()
    inv2 = 1 / (tail * tail)
    series, term = F.ones_like(tail), F.ones_like(tail)
    for k in range(1, 12):
        term = term * -(2 * k - 1) * inv2
        series = series + term
    low = tail * tail * -0.5 - (-tail).log() - 0.5 * math.log(2 * math.pi) + series.log()
    out = F.where(x > 0, up, F.where(x >= _LOWER_TAIL, mid, low))
    return F.where(x.isnan(), x, out).to(dtype)


def _entr_value(x):
    """-x log(x) for x > 0, 0 at 0, -inf below (NaN stays NaN)."""
    pos = x > 0
    safe = F.where(pos, x, F.ones_like(x))
    return F.where(pos, -x * safe.log(), F.where(x == 0, F.zeros_like(x), F.full_like(x, -math.inf) + x * 0))


class _Entr(Function):
    """torch's derivative -(1 + log x): +inf at 0, NaN below (a where-composite would give 0 there)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _entr_value(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * -(1 + x.log())


def entr(input):
    x = M._as_float(input)
    return _Entr.apply(x) if x.requires_grad else _entr_value(x)


def _xlog1py_value(x, y):
    return F.where((x == 0) & ~y.isnan(), F.zeros_like(x), x * y.log1p())


class _Xlog1py(Function):
    """torch's derivatives: d/dx = xlog1py(grad, y), 0 where x == 0 and y <= -1; d/dy = grad * x / (1 + y)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return _xlog1py_value(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        gx = F.where((x == 0) & (y <= -1), F.zeros_like(grad), xlog1py(grad, y))
        return gx, grad * x / (1 + y)


def xlog1py(input, other):
    """input * log1p(other), 0 where input == 0 (NaN where other is NaN)."""
    return M._binary_with_derivative(_xlog1py_value, _Xlog1py, input, other)
