"""Differential tests of vt.distributions.ContinuousBernoulli against torch on random float64 probs/logits,
including values inside the Taylor region around 1/2: log_prob, entropy, mean/variance, cdf/icdf and their
gradients, rsample shape/differentiability, expand and the errors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions.continuous_bernoulli import ContinuousBernoulli

from dist_helpers import Outputs, close, pair

TD = torch.distributions
RNG = np.random.default_rng(13)
TOL = dict(rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("use_probs", [True, False])
def test_continuous_bernoulli_against_torch(use_probs):
    probs = RNG.uniform(0.05, 0.95, (2, 4))
    probs[0, :3] = [0.5, 0.4995, 0.5008]  # inside the unstable region: Taylor branches
    param = probs if use_probs else np.log(probs) - np.log1p(-probs)
    key = "probs" if use_probs else "logits"
    pv, pt = pair(param, grad=True)
    dv, dt = ContinuousBernoulli(**{key: pv}), TD.ContinuousBernoulli(**{key: pt})
    assert dv.batch_shape == tuple(dt.batch_shape) == (2, 4)
    xv, xt = pair(RNG.uniform(0.0, 1.0, (3, 2, 4)))
    uv, ut = pair(RNG.uniform(0.02, 0.98, (3, 2, 4)))
    out = Outputs()
    out.add(dv.log_prob(xv), dt.log_prob(xt), **TOL)
    out.add(dv.cdf(xv), dt.cdf(xt), **TOL)
    out.add(dv.icdf(uv), dt.icdf(ut), **TOL)
    out.add(dv.entropy(), dt.entropy(), **TOL)
    out.add(dv.mean, dt.mean, **TOL)
    out.add(dv.variance, dt.variance, **TOL)
    out.check_grads((3, 2, 4), [pv], [pt], RNG, rtol=1e-6, atol=1e-8)
    close(dv.stddev, dt.stddev, **TOL)
    close(dv.probs, dt.probs)
    close(dv.logits, dt.logits, **TOL)
    edge_v, edge_t = pair(np.array([0.0, 1.0, 0.3]))
    close(ContinuousBernoulli(**{key: pv[1, :3]}).cdf(edge_v), TD.ContinuousBernoulli(**{key: pt[1, :3]}).cdf(edge_t),
          **TOL)
    r = dv.rsample((5,))
    assert tuple(r.shape) == (5, 2, 4) and r.requires_grad
    s = r.detach().numpy()
    assert ((s >= 0) & (s <= 1)).all()
    e = dv.expand((3, 2, 4))
    assert e.batch_shape == (3, 2, 4)
    close(e.log_prob(xv), dt.expand((3, 2, 4)).log_prob(xt), **TOL)


def test_continuous_bernoulli_errors():
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        ContinuousBernoulli()
    with pytest.raises(ValueError, match="probs"):
        ContinuousBernoulli(probs=vt.tensor([1.5], dtype=vt.float64), validate_args=True)
    d = ContinuousBernoulli(probs=vt.tensor([0.3], dtype=vt.float64), validate_args=True)
    with pytest.raises(ValueError, match="support"):
        d.log_prob(vt.tensor([1.5], dtype=vt.float64))
