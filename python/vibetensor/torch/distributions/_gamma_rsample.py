"""Reparameterised standard-gamma draws: ``standard_gamma_rsample(alpha)`` samples like _samplers.standard_gamma
and backpropagates the implicit reparameterisation gradient dx/dalpha = -(dP(alpha, x)/dalpha) / p(x; alpha),
holding the CDF level P(alpha, x) of each draw fixed (what torch's Gamma/Dirichlet/Beta rsample use, though torch
evaluates it with fitted approximations; here it is summed from the series of the regularised lower incomplete
gamma function, so it is accurate to float64 rounding away from the extreme tails). The same series gives
``gammainc_lower(a, x)``, the regularised lower incomplete gamma P(a, x) behind Gamma.cdf, differentiable in both
arguments."""
import math

import vibetensor.torch as vt
from vibetensor.autograd.function import Function

from ._samplers import standard_gamma

__all__ = ["gammainc_lower", "standard_gamma_grad", "standard_gamma_rsample"]

_F64 = vt.float64
_BLOCK = 64


def _lower_series(a, xs):
    """(P(a, x), dP/da) for flat float64 a and x > 0 of one shape.

    P(a, x) = sum_n exp(-x) x^(a+n) / Gamma(a+n+1), so dP/da = sum_n term_n (log x - digamma(a+n+1)). The terms
    are a Poisson(x) pmf at a + n: past n = x - a + 12 sqrt(x) (plus a margin) they are negligible."""
    log_x = vt.log(xs)
    needed = (xs - a).clamp(min=0) + 12 * vt.sqrt(xs) + 40
    p = vt.zeros(a.numel(), dtype=_F64, device=a.device)
    dp = vt.zeros(a.numel(), dtype=_F64, device=a.device)
    pending = vt.arange(a.numel(), device=a.device)
    start = 0
    while pending.numel() > 0:
        n = vt.arange(start, start + _BLOCK, dtype=_F64, device=a.device)
        k = a[pending].unsqueeze(-1) + n + 1  # a + n + 1
        lx = log_x[pending].unsqueeze(-1)
        term = vt.exp((k - 1) * lx - xs[pending].unsqueeze(-1) - vt.lgamma(k))
        p.index_put_((pending,), p[pending] + term.sum(-1))
        dp.index_put_((pending,), dp[pending] + (term * (lx - vt.digamma(k))).sum(-1))
        start += _BLOCK
        pending = pending[needed[pending] > start]
    return p, dp


def _log_density(a, xs):
    return (a - 1) * vt.log(xs) - xs - vt.lgamma(a)


def standard_gamma_grad(alpha, x):
    """dx/dalpha of Gamma(alpha, 1) draws x > 0 (tensors of one shape), in float64."""
    with vt.no_grad():
        a = alpha.detach().to(_F64).reshape(-1)
        xs = x.detach().to(_F64).reshape(-1)
        _, dp = _lower_series(a, xs)
        return (-dp * vt.exp(-_log_density(a, xs))).reshape(tuple(alpha.shape))


class _GammaincLower(Function):
    @staticmethod
    def forward(ctx, a, x):
        a64, x64 = a.to(_F64).reshape(-1), x.to(_F64).reshape(-1)
        pos = x64 > 0  # P(a, 0) = 0; the series' log(0) would make 0 * inf there
        safe = vt.where(pos, x64, vt.ones_like(x64))
        p, dp = _lower_series(a64, safe)
        zero = vt.zeros_like(p)
        p, dp = vt.where(pos, p, zero), vt.where(pos, dp, zero)
        # d/dx P at x = 0 is the density's limit there: infinite for a < 1, 1 for a = 1, 0 above (as torch).
        at_zero = vt.where(a64 < 1, vt.full_like(p, math.inf), vt.where(a64 == 1, vt.ones_like(p), zero))
        density = vt.where(pos, vt.exp(_log_density(a64, safe)), at_zero)
        ctx.save_for_backward(dp.reshape(tuple(a.shape)).to(a.dtype), density.reshape(tuple(a.shape)).to(a.dtype))
        return p.reshape(tuple(a.shape)).to(a.dtype)

    @staticmethod
    def backward(ctx, grad):
        dp, density = ctx.saved_tensors
        return grad * dp, grad * density


def gammainc_lower(a, x):
    """The regularised lower incomplete gamma function P(a, x) for a > 0, x >= 0 (broadcast together)."""
    a, x = vt.broadcast_tensors(a, x)
    return _GammaincLower.apply(a, x)


class _StandardGammaRsample(Function):
    @staticmethod
    def forward(ctx, alpha):
        x = standard_gamma(alpha)
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    def backward(ctx, grad):
        alpha, x = ctx.saved_tensors
        return grad * standard_gamma_grad(alpha, x).to(grad.dtype)


def standard_gamma_rsample(alpha):
    """Gamma(alpha, 1) draws of alpha's shape, differentiable w.r.t. alpha."""
    return _StandardGammaRsample.apply(alpha)
