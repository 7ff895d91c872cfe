"""igamma / igammac (torch.special.gammainc / gammaincc): the regularised lower and upper incomplete gamma
functions P(a, x) and Q(a, x) = 1 - P(a, x), with the methods igamma/igammac and in-place igamma_/igammac_.

Computed elementwise in float64 from vt ops: the power series of P where x < a + 1, the continued fraction of Q
(modified Lentz) elsewhere, each iterated until every element has converged (to float64 rounding); the one not
computed directly is 1 minus the other. Edge values as torch's: x = 0 gives P = 0, a = 0 (x > 0) gives P = 1,
x = inf gives P = 1, a = inf (finite x) gives P = 0, a < 0, x < 0, a = x = 0 or NaN give NaN.

Gradient: d/dx P = x^(a-1) e^-x / Gamma(a) (and minus that for Q); the gradient in a is not implemented, as
torch's (its backward raises NotImplementedError)."""
from __future__ import annotations

import math

from .._C import core as _core
from ..autograd.function import Function
from . import _functions as F
from ._out import _torch_name

_dt = _core.dtype
_EPS = 2.0 ** -53
_TINY = 1e-300


def _vt():
    from .. import torch
    return torch


def _prefactor(a, x):
    """x^a e^-x / Gamma(a), in logs (x > 0, a > 0 where used)."""
    return _vt().exp(a * _vt().log(x) - x - _vt().lgamma(a))


def _series_p(a, x):
    term = 1.0 / a
    total = term
    for n in range(1, 5000):
        term = term * x / (a + n)
        total = total + term
        if n % 8 == 0 and bool((term.abs() <= total.abs() * _EPS).all().item()):
            break
    return total * _prefactor(a, x)


def _cf_q(a, x):
    b = x + 1.0 - a
    c = _vt().full_like(x, 1.0 / _TINY)
    d = 1.0 / F.where(b.abs() < _TINY, _TINY, b)
    h = d
    for i in range(1, 5000):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = 1.0 / F.where(d.abs() < _TINY, _TINY, d)
        c = b + an / c
        c = F.where(c.abs() < _TINY, _TINY, c)
        step = d * c
        h = h * step
        if i % 8 == 0 and bool(((step - 1.0).abs() <= _EPS).all().item()):
            break
    return h * _prefactor(a, x)


def _igamma_values(a, x, upper):
    """P(a, x) (or Q with upper=True) for float64 tensors of one shape, edge cases included."""
    nan = (a < 0) | (x < 0) | a.isnan() | x.isnan() | ((a == 0) & (x == 0))
    regular = ~nan & (a > 0) & (x > 0) & x.isfinite() & a.isfinite()
    # placeholders where not regular keep the iterations finite (their values are replaced below)
    aa, xx = F.where(regular, a, 1.0), F.where(regular, x, 1.0)
    use_series = xx < aa + 1.0
    s_a, s_x = F.where(use_series, aa, 1.0), F.where(use_series, xx, 0.5)
    c_a, c_x = F.where(use_series, 1.0, aa), F.where(use_series, 3.0, xx)
    p_series = _series_p(s_a, s_x) if bool(use_series.any().item()) else F.zeros_like(aa)
    q_cf = _cf_q(c_a, c_x) if bool((~use_series).any().item()) else F.zeros_like(aa)
    p = F.where(use_series, p_series, 1.0 - q_cf)
    q = F.where(use_series, 1.0 - p_series, q_cf)
    val = q if upper else p
    # edges: P = 0 at x = 0 or a = inf (finite x); P = 1 at a = 0 (x > 0) or x = inf
    p_edge = F.where((x == 0) | (a.isinf() & x.isfinite()), 0.0, 1.0)
    edge = 1.0 - p_edge if upper else p_edge
    out = F.where(regular, val, edge)
    return F.where(nan, math.nan, out)


class _IGamma(Function):
    @staticmethod
    def forward(ctx, a, x, upper):
        ctx.save_for_backward(a, x)
        ctx.upper = upper
        out_dtype = a.dtype
        return _igamma_values(a.detach().to(_dt.float64), x.detach().to(_dt.float64), upper).to(out_dtype)

    @staticmethod
    def backward(ctx, grad):
        a, x = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise NotImplementedError(f"the derivative for '{'igammac' if ctx.upper else 'igamma'}: input' is not "
                                      "implemented.")
        d = _vt().exp((a - 1.0) * _vt().log(x) - x - _vt().lgamma(a))
        return None, grad * (-d if ctx.upper else d), None


def _igamma(input, other, upper, out=None):
    name = "igammac" if upper else "igamma"
    Tensor = _core.Tensor
    if not isinstance(other, Tensor):
        raise TypeError(f"{name}(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
    dtype = F.result_type(input, other)
    if not dtype.is_floating_point:
        raise NotImplementedError(f"\"igamma_cpu\" not implemented for '{_torch_name(dtype)}'")
    a, x = _vt().broadcast_tensors(input.to(dtype), other.to(dtype))
    res = _IGamma.apply(a, x, upper)
    return res if out is None else out.copy_(res)


def igamma(input, other, *, out=None):
    return _igamma(input, other, False, out)


def igammac(input, other, *, out=None):
    return _igamma(input, other, True, out)


FUNCTIONS = {"igamma": igamma, "igammac": igammac}
SPECIAL = {"gammainc": igamma, "gammaincc": igammac}
METHODS = {
    "igamma": igamma, "igammac": igammac,
    "igamma_": lambda self, other: self.copy_(igamma(self, other)),
    "igammac_": lambda self, other: self.copy_(igammac(self, other)),
}

for _method, _fn in METHODS.items():
    if not hasattr(_core.Tensor, _method):
        setattr(_core.Tensor, _method, _fn)
