"""Reparameterised standard-gamma draws: ``standard_gamma_rsample(alpha)`` samples like _samplers.standard_gamma
and backpropagates the implicit reparameterisation gradient dx/dalpha = -(dP(alpha, x)/dalpha) / p(x; alpha),
holding the CDF level P(alpha, x) of each draw fixed (what torch's Gamma/Dirichlet/Beta rsample use, though torch
evaluates it with fitted approximations; here it is summed from the series of the regularised lower incomplete
gamma function, so it is accurate to float64 rounding away from the extreme tails)."""
import vibetensor.torch as vt
from vibetensor.autograd.function import Function

from ._samplers import standard_gamma

__all__ = ["standard_gamma_grad", "standard_gamma_rsample"]

_F64 = vt.float64
_BLOCK = 64


def standard_gamma_grad(alpha, x):
    """dx/dalpha of Gamma(alpha, 1) draws x (tensors of one shape), in float64.

    P(a, x) = sum_n exp(-x) x^(a+n) / Gamma(a+n+1), so dP/da = sum_n term_n (log x - digamma(a+n+1)). The terms
    are a Poisson(x) pmf at a + n: past n = x - a + 12 sqrt(x) (plus a margin) they are negligible."""
    with vt.no_grad():
        a = alpha.detach().to(_F64).reshape(-1)
        xs = x.detach().to(_F64).reshape(-1)
        log_x = vt.log(xs)
        needed = (xs - a).clamp(min=0) + 12 * vt.sqrt(xs) + 40
        total = vt.zeros(a.numel(), dtype=_F64, device=a.device)
        pending = vt.arange(a.numel(), device=a.device)
        start = 0
        while pending.numel() > 0:
            n = vt.arange(start, start + _BLOCK, dtype=_F64, device=a.device)
            k = a[pending].unsqueeze(-1) + n + 1  # a + n + 1
            lx = log_x[pending].unsqueeze(-1)
            log_term = (k - 1) * lx - xs[pending].unsqueeze(-1) - vt.lgamma(k)
            part = (vt.exp(log_term) * (lx - vt.digamma(k))).sum(-1)
            total.index_put_((pending,), total[pending] + part)
            start += _BLOCK
            pending = pending[needed[pending] > start]
        log_density = (a - 1) * log_x - xs - vt.lgamma(a)
        return (-total * vt.exp(-log_density)).reshape(tuple(alpha.shape))


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
