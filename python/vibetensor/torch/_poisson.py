"""vt.poisson(input, generator=None): one Poisson sample per element, with the element as its rate, drawn from
vibetensor's RNG (a vt.Generator through drawing_from).

Rates below 10 use inversion by sequential search (walk the cdf until it passes a uniform); rates >= 10 use
Hormann's PTRS transformed rejection (1993), exact for every rate (no normal approximation). Both are vectorised
over the tensor; the Python loops are bounded (cdf steps, rejection rounds) and stop once every element is done.
Work is in float64; the result has input's dtype and, like torch, is linked to input at gradient zero.
"""

from .._C import core as _core
from . import _functions as F
from ._generator import drawing_from

_SMALL = 10.0  # below this rate, inversion; PTRS's constants are tuned for rates >= 10
_MAX_STEPS = 256  # cdf steps of the inversion: P(X > 256) for a rate < 10 is far below float64's resolution
_MAX_ROUNDS = 64  # PTRS accepts > 85% per round; 64 rounds leave < 1e-50 odds of an element unfinished


def _inversion(lam):
    u = F.rand(*lam.shape, dtype=_core.dtype.float64, device=lam.device)
    p = (-lam).exp()  # P(X = 0)
    cdf = p
    k = F.zeros_like(lam)
    for i in range(1, _MAX_STEPS + 1):
        past = u > cdf
        if not bool(past.any().item()):
            break
        k = k + past.to(k.dtype)  # each cdf value u still exceeds adds one
        p = p * lam / float(i)
        cdf = cdf + p
    return k


def _ptrs(lam):
    slam, loglam = lam.sqrt(), lam.log()
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    out = F.zeros_like(lam)
    done = F.zeros_like(lam, dtype=_core.dtype.bool)
    for _ in range(_MAX_ROUNDS):
        u = F.rand(*lam.shape, dtype=lam.dtype, device=lam.device) - 0.5
        v = F.rand(*lam.shape, dtype=lam.dtype, device=lam.device)
        us = 0.5 - u.abs()
        k = ((2 * a / us + b) * u + lam + 0.43).floor()
        quick = (us >= 0.07) & (v <= vr)  # the squeeze: inside the hat's inner region
        ok_k = (k >= 0) & ~((us < 0.013) & (v > us))
        ksafe = F.where(k >= 0, k, 0.0)
        lhs = v.log() + inv_alpha.log() - (a / (us * us) + b).log()
        rhs = -lam + ksafe * loglam - (ksafe + 1).lgamma()
        accept = (quick | (ok_k & (lhs <= rhs))) & ~done
        out = F.where(accept, k, out)
        done = done | accept
        if bool(done.all().item()):
            break
    return out


def poisson(input, generator=None):
    """torch.poisson: samples of Poisson(input) elementwise; rates must be non-negative."""
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"poisson" not implemented for {input.dtype}')
    lam = input.detach().to(_core.dtype.float64)
    if lam.numel() == 0:
        return F.zeros_like(input)
    if not bool((lam >= 0).all().item()):  # also rejects NaN
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    small = lam < _SMALL
    with drawing_from(generator):
        out = _inversion(F.where(small, lam, 0.0))
        if not bool(small.all().item()):
            out = F.where(small, out, _ptrs(F.where(small, _SMALL, lam)))
    out = out.to(input.dtype)
    if input.requires_grad:  # torch's result requires grad with a zero gradient to the rate
        out = F.where(F.zeros_like(out, dtype=_core.dtype.bool), input, out)
    return out
