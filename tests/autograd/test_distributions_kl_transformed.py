"""Differential tests of the KL divergences registered for the transform-based families (TransformedDistribution
pairs, HalfNormal, Pareto, ContinuousBernoulli, and LogNormal still through its own rule) against torch's
kl_divergence on random float64 parameters, with gradients, and the NotImplementedError cases."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions import kl_transformed  # noqa: F401  (registers the pairs)
from vibetensor.torch.distributions import transforms as T
from vibetensor.torch.distributions.continuous_bernoulli import ContinuousBernoulli
from vibetensor.torch.distributions.half_normal import HalfNormal
from vibetensor.torch.distributions.kl import kl_divergence
from vibetensor.torch.distributions.lognormal import LogNormal
from vibetensor.torch.distributions.normal import Normal
from vibetensor.torch.distributions.pareto import Pareto
from vibetensor.torch.distributions.transformed_distribution import TransformedDistribution

from dist_helpers import check_grads, close, pair

TD = torch.distributions
TT = torch.distributions.transforms
RNG = np.random.default_rng(17)
TOL = dict(rtol=1e-8, atol=1e-10)


def _params(kinds, shape=(2, 3)):
    out = []
    for kind in kinds:
        a = {"real": RNG.standard_normal(shape), "pos": RNG.uniform(0.4, 2.5, shape),
             "prob": RNG.uniform(0.1, 0.9, shape)}[kind]
        if kind == "prob":
            a[0, 0] = 0.5  # the Taylor branch of ContinuousBernoulli
        out.append(pair(a, grad=True))
    return [v for v, _ in out], [t for _, t in out]


CASES = {
    "halfnormal": (lambda m, a: (m.HalfNormal(a[0]), m.HalfNormal(a[1])), ["pos", "pos"]),
    "pareto": (lambda m, a: (m.Pareto(a[0], a[1]), m.Pareto(a[2], a[3])), ["pos", "pos", "pos", "pos"]),
    "cont_bernoulli": (lambda m, a: (m.ContinuousBernoulli(a[0]), m.ContinuousBernoulli(a[1])), ["prob", "prob"]),
    "lognormal": (lambda m, a: (m.LogNormal(a[0], a[1]), m.LogNormal(a[2], a[3])), ["real", "pos", "real", "pos"]),
}


class _VtFamilies:
    HalfNormal, Pareto, ContinuousBernoulli, LogNormal = HalfNormal, Pareto, ContinuousBernoulli, LogNormal


@pytest.mark.parametrize("name", list(CASES))
def test_kl_against_torch(name):
    build, kinds = CASES[name]
    pv, pt = _params(kinds)
    (p_v, q_v), (p_t, q_t) = build(_VtFamilies, pv), build(TD, pt)
    kv, kt = kl_divergence(p_v, q_v), TD.kl_divergence(p_t, q_t)
    close(kv, kt, **TOL)
    finite = np.isfinite(kt.detach().numpy())
    mask_v, mask_t = pair(finite.astype(np.float64))
    check_grads(vt.where(mask_v > 0, kv, vt.zeros_like(kv)), torch.where(mask_t > 0, kt, torch.zeros_like(kt)),
                pv, pt, RNG, rtol=1e-7, atol=1e-9)


def test_kl_transformed_pairs():
    pv, pt = _params(["real", "pos", "real", "pos"])
    make_v = lambda lo, sc: TransformedDistribution(Normal(lo, sc), [T.AffineTransform(1.0, 2.0, event_dim=1),
                                                                      T.StickBreakingTransform()])
    make_t = lambda lo, sc: TD.TransformedDistribution(TD.Normal(lo, sc), [TT.AffineTransform(1.0, 2.0, event_dim=1),
                                                                           TT.StickBreakingTransform()])
    kv = kl_divergence(make_v(pv[0], pv[1]), make_v(pv[2], pv[3]))
    kt = TD.kl_divergence(make_t(pt[0], pt[1]), make_t(pt[2], pt[3]))
    close(kv, kt, **TOL)
    check_grads(kv, kt, pv, pt, RNG)
    nv = Normal(pv[0], pv[1])
    with pytest.raises(NotImplementedError):
        kl_divergence(TransformedDistribution(nv, T.ExpTransform()), TransformedDistribution(nv, T.TanhTransform()))
