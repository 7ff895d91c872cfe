"""Random variate generators the distributions need and vibetensor has no op for, written from vt ops: standard
gamma (Marsaglia-Tsang squeeze/rejection, boosted for alpha < 1), Poisson (counting exponential arrivals for small
rates, Hormann's PTRS transformed rejection for large ones) and binomial (counting Bernoulli trials in chunks).
Each rejection loop redraws only the elements not yet accepted. All draws are made without a graph in float64 and
returned in the parameter's dtype and shape."""
import vibetensor.torch as vt

__all__ = ["standard_gamma", "poisson", "binomial"]

_F64 = vt.float64


def _flat64(t):
    return t.detach().to(_F64).reshape(-1)


def standard_gamma(alpha):
    """Gamma(alpha, 1) draws of alpha's shape (alpha > 0)."""
    with vt.no_grad():
        a = _flat64(alpha)
        n = a.numel()
        boost = a < 1
        # Gamma(a) = Gamma(a + 1) * U ** (1 / a): sample at a + 1 >= 1 where the squeeze method is efficient.
        d = vt.where(boost, a + 1, a) - 1.0 / 3.0
        c = 1.0 / vt.sqrt(9.0 * d)
        out = vt.zeros(n, dtype=_F64, device=a.device)
        pending = vt.arange(n, device=a.device)
        while pending.numel() > 0:
            dp, cp = d[pending], c[pending]
            x = vt.randn(pending.numel(), dtype=_F64, device=a.device)
            v = (1 + cp * x) ** 3
            u = vt.rand(pending.numel(), dtype=_F64, device=a.device)
            logv = vt.log(v.clamp(min=1e-300))
            ok = (v > 0) & (vt.log(u) < 0.5 * x * x + dp - dp * v + dp * logv)
            out.index_put_((pending[ok],), (dp * v)[ok])
            pending = pending[~ok]
        u = vt.rand(n, dtype=_F64, device=a.device)
        log_out = vt.log(out) + vt.where(boost, vt.log(u) / a, vt.zeros_like(a))
        # The boost can underflow for tiny alpha; torch clamps its gamma draws to the dtype's smallest normal too.
        res = vt.exp(log_out).to(alpha.dtype).reshape(tuple(alpha.shape))
        return res.clamp(min=vt.finfo(alpha.dtype).tiny)


def _poisson_small(lam):
    # The number of unit-rate exponential arrivals before time lam; lam < 10 keeps the loop short.
    n = lam.numel()
    count = vt.zeros(n, dtype=_F64, device=lam.device)
    total = vt.zeros(n, dtype=_F64, device=lam.device)
    pending = (lam > 0).nonzero().reshape(-1)
    while pending.numel() > 0:
        e = -vt.log1p(-vt.rand(pending.numel(), dtype=_F64, device=lam.device))
        t = total[pending] + e
        total.index_put_((pending,), t)
        arrived = t <= lam[pending]
        count.index_put_((pending[arrived],), count[pending[arrived]] + 1)
        pending = pending[arrived]
    return count


def _poisson_ptrs(lam):
    # Hormann (1993) "The transformed rejection method for generating Poisson random variables", for lam >= 10.
    n = lam.numel()
    out = vt.zeros(n, dtype=_F64, device=lam.device)
    slam, loglam = vt.sqrt(lam), vt.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    pending = vt.arange(n, device=lam.device)
    while pending.numel() > 0:
        m = pending.numel()
        lp, ap, bp = lam[pending], a[pending], b[pending]
        u = vt.rand(m, dtype=_F64, device=lam.device) - 0.5
        v = vt.rand(m, dtype=_F64, device=lam.device)
        us = 0.5 - u.abs()
        k = vt.floor((2 * ap / us + bp) * u + lp + 0.43)
        quick = (us >= 0.07) & (v <= vr[pending])
        bad = (k < 0) | ((us < 0.013) & (v > us))
        lhs = vt.log(v) + vt.log(inv_alpha[pending]) - vt.log(ap / (us * us) + bp)
        rhs = -lp + k * loglam[pending] - vt.lgamma(k.clamp(min=0) + 1)
        ok = quick | (~bad & (lhs <= rhs))
        out.index_put_((pending[ok],), k[ok])
        pending = pending[~ok]
    return out


def poisson(rate):
    """Poisson(rate) counts of rate's shape and dtype (rate >= 0)."""
    with vt.no_grad():
        lam = _flat64(rate)
        out = vt.zeros(lam.numel(), dtype=_F64, device=lam.device)
        small = (lam < 10).nonzero().reshape(-1)
        large = (lam >= 10).nonzero().reshape(-1)
        if small.numel() > 0:
            out.index_put_((small,), _poisson_small(lam[small]))
        if large.numel() > 0:
            out.index_put_((large,), _poisson_ptrs(lam[large]))
        return out.to(rate.dtype).reshape(tuple(rate.shape))


def binomial(total_count, probs, chunk=256):
    """Binomial(total_count, probs) counts (tensors of one shape), the number of successes among total_count
    Bernoulli trials; the trials are drawn ``chunk`` at a time, so the cost grows with max(total_count)."""
    with vt.no_grad():
        n, p = _flat64(total_count), _flat64(probs)
        out = vt.zeros(n.numel(), dtype=_F64, device=n.device)
        n_max = int(n.max().item()) if n.numel() > 0 else 0
        for start in range(0, n_max, chunk):
            width = min(chunk, n_max - start)
            trial = vt.arange(start, start + width, dtype=_F64, device=n.device)
            live = trial.unsqueeze(0) < n.unsqueeze(-1)
            hit = vt.rand(n.numel(), width, dtype=_F64, device=n.device) < p.unsqueeze(-1)
            out = out + (hit & live).to(_F64).sum(-1)
        return out.to(probs.dtype).reshape(tuple(probs.shape))

