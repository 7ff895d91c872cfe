"""Differential tests of vt.distributions.LowRankMultivariateNormal against torch on random float64 parameters
with batch broadcasting between loc, cov_factor and cov_diag: log_prob, entropy, mean/variance and the matrix
views with their gradients, rsample shape/differentiability and sample covariance, expand, and the errors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions.lowrank_multivariate_normal import LowRankMultivariateNormal

from dist_helpers import Outputs, close, pair

TD = torch.distributions
RNG = np.random.default_rng(5)
TOL = dict(rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("loc_shape,w_shape,d_shape", [((3,), (3, 2), (3,)), ((2, 4), (4, 1), (1, 4)),
                                                       ((4,), (2, 4, 3), (4,)), ((5,), (5, 5), (5,))])
def test_lowrank_mvn_against_torch(loc_shape, w_shape, d_shape):
    (lv, lt), (wv, wt), (dv_, dt_) = (pair(RNG.standard_normal(loc_shape), True),
                                      pair(RNG.standard_normal(w_shape), True),
                                      pair(RNG.uniform(0.3, 2.0, d_shape), True))
    dv, dt = LowRankMultivariateNormal(lv, wv, dv_), TD.LowRankMultivariateNormal(lt, wt, dt_)
    batch = tuple(dt.batch_shape)
    assert dv.batch_shape == batch and dv.event_shape == tuple(dt.event_shape)
    xv, xt = pair(RNG.standard_normal((3,) + batch + tuple(dt.event_shape)) * 2)
    out = Outputs()
    out.add(dv.log_prob(xv), dt.log_prob(xt), **TOL)
    out.add(dv.entropy().expand((3,) + batch), dt.entropy().expand((3,) + batch), **TOL)
    out.check_grads((3,) + batch, [lv, wv, dv_], [lt, wt, dt_], RNG, rtol=1e-7, atol=1e-9)
    leaves = ([lv, wv, dv_], [lt, wt, dt_])
    for name in ["variance", "covariance_matrix", "precision_matrix", "scale_tril"]:
        for p in leaves[0] + leaves[1]:
            p.grad = None
        out = Outputs()  # fresh distributions: the capacitance graph was freed by the backward above
        v = getattr(LowRankMultivariateNormal(lv, wv, dv_), name)
        t = getattr(TD.LowRankMultivariateNormal(lt, wt, dt_), name)
        out.add(v, t, **TOL)
        out.check_grads(tuple(t.shape), *leaves, RNG, rtol=1e-7, atol=1e-9)
    dv, dt = LowRankMultivariateNormal(lv, wv, dv_), TD.LowRankMultivariateNormal(lt, wt, dt_)
    close(dv.mean, dt.mean)
    close(dv.mode, dt.mode)
    r = dv.rsample((6,))
    assert tuple(r.shape) == (6,) + batch + tuple(dt.event_shape) and r.requires_grad
    e = dv.expand((2,) + batch)
    assert e.batch_shape == (2,) + batch
    close(e.log_prob(xv[:2]), dt.expand((2,) + batch).log_prob(xt[:2]), **TOL)


def test_lowrank_mvn_sample_covariance():
    vt.manual_seed(1)
    w = vt.tensor([[1.0], [0.5], [-1.0]], dtype=vt.float64)
    d = vt.tensor([0.5, 1.0, 0.2], dtype=vt.float64)
    dist = LowRankMultivariateNormal(vt.zeros(3, dtype=vt.float64), w, d)
    s = dist.sample((40000,)).numpy()
    np.testing.assert_allclose(np.cov(s.T), dist.covariance_matrix.numpy(), atol=0.06)


def test_lowrank_mvn_errors():
    z = vt.zeros(3, dtype=vt.float64)
    w = vt.ones(3, 2, dtype=vt.float64)
    with pytest.raises(ValueError, match="loc must be at least one-dimensional"):
        LowRankMultivariateNormal(vt.tensor(0.0), w, z + 1)
    with pytest.raises(ValueError, match="cov_factor must be at least two-dimensional"):
        LowRankMultivariateNormal(z, z, z + 1)
    with pytest.raises(ValueError, match="cov_factor must be a batch of matrices with shape 3 x m"):
        LowRankMultivariateNormal(z, vt.ones(4, 2, dtype=vt.float64), z + 1)
    with pytest.raises(ValueError, match="cov_diag must be a batch of vectors"):
        LowRankMultivariateNormal(z, w, vt.ones(2, dtype=vt.float64))
    with pytest.raises(ValueError, match="Incompatible batch shapes"):
        LowRankMultivariateNormal(vt.zeros(2, 3, dtype=vt.float64), vt.ones(4, 3, 2, dtype=vt.float64), z + 1)
    with pytest.raises(ValueError, match="cov_diag"):
        LowRankMultivariateNormal(z, w, z - 1, validate_args=True)
