"""Differential tests of vt.distributions.TransformedDistribution and the families built on transforms
(HalfNormal, HalfCauchy, StudentT, Chi2, RelaxedBernoulli, RelaxedOneHotCategorical) against torch.distributions on
random float64 parameters: batch/event shapes, log_prob, cdf/icdf through monotone (also decreasing) transforms,
rsample shapes and gradients, a SAC-style tanh-squashed Normal policy, moments, entropy and errors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions import transforms as T
from vibetensor.torch.distributions.independent import Independent
from vibetensor.torch.distributions.normal import Normal
from vibetensor.torch.distributions.transformed_distribution import TransformedDistribution

from dist_helpers import Outputs, check_grads, close, pair

TD = torch.distributions
TT = torch.distributions.transforms
RNG = np.random.default_rng(7)


def _normal(mod, shape, grad=True):
    (lv, lt), (sv, st) = pair(RNG.standard_normal(shape), grad), pair(RNG.uniform(0.4, 2.0, shape), grad)
    return (Normal(lv, sv), TD.Normal(lt, st)), [lv, sv], [lt, st]


# name: (base shape, vt transforms, torch transforms, batch shape, event shape)
def _td_cases():
    a, b = RNG.standard_normal((3,)), RNG.uniform(-2, 2, (3,))
    av, at = pair(a)
    bv, bt = pair(b)
    return {
        "exp": ((2, 3), [T.ExpTransform()], [TT.ExpTransform()], (2, 3), ()),
        "affine_exp": ((2, 3), [T.AffineTransform(av, bv), T.ExpTransform()],
                       [TT.AffineTransform(at, bt), TT.ExpTransform()], (2, 3), ()),
        "affine_event": ((2, 3), [T.AffineTransform(av, bv, event_dim=1)],
                         [TT.AffineTransform(at, bt, event_dim=1)], (2,), (3,)),
        "broadcast_base": ((3,), [T.AffineTransform(vt.from_numpy(np.ones((4, 3))), 2.0)],
                           [TT.AffineTransform(torch.ones(4, 3, dtype=torch.float64), 2.0)], (4, 3), ()),
        "stick": ((2, 3), [T.StickBreakingTransform()], [TT.StickBreakingTransform()], (2,), (4,)),
        "reshape_tanh": ((5, 6), [T.ReshapeTransform((6,), (2, 3)), T.TanhTransform()],
                         [TT.ReshapeTransform((6,), (2, 3)), TT.TanhTransform()], (5,), (2, 3)),
        "sigmoid_decreasing": ((4,), [T.AffineTransform(0.0, -1.0), T.SigmoidTransform()],
                               [TT.AffineTransform(0.0, -1.0), TT.SigmoidTransform()], (4,), ()),
    }


@pytest.mark.parametrize("name", list(_td_cases()))
def test_transformed_distribution_against_torch(name):
    base_shape, tv, tt, batch, event = _td_cases()[name]
    (nv, nt), lv, lt = _normal(None, base_shape)
    dv, dt = TransformedDistribution(nv, tv), TD.TransformedDistribution(nt, tt)
    assert dv.batch_shape == tuple(dt.batch_shape) == batch and dv.event_shape == tuple(dt.event_shape) == event
    assert repr(dv.support) == repr(dt.support) and dv.has_rsample
    with torch.no_grad():
        value = dt.sample((2,))
    assert tuple(dv.sample((2,)).shape) == tuple(value.shape) == tuple(dv.rsample((2,)).shape)
    vv, vt_ = pair(value.numpy())
    out = Outputs()
    out.add(dv.log_prob(vv), dt.log_prob(vt_), rtol=1e-7, atol=1e-9)
    if not event:
        out.add(dv.cdf(vv), dt.cdf(vt_), rtol=1e-7, atol=1e-9)
        uv, ut = pair(RNG.uniform(0.05, 0.95, (2,) + batch))
        out.add(dv.icdf(uv), dt.icdf(ut), rtol=1e-7, atol=1e-9)
    out.check_grads((2,) + batch, lv, lt, RNG, rtol=1e-6, atol=1e-8)
    ev = dv.expand((3,) + batch)
    assert ev.batch_shape == (3,) + batch and ev.event_shape == event
    assert tuple(ev.sample().shape) == tuple(dt.expand((3,) + batch).sample().shape)


def test_rsample_gradient_through_transforms():
    (nv, _), (lv, sv), _ = _normal(None, (3,))
    d = TransformedDistribution(nv, [T.AffineTransform(1.0, 2.0), T.ExpTransform()])
    y = d.rsample((4,))
    y.sum().backward()
    eps = (np.log(y.detach().numpy()) - 1.0) / 2.0  # the base draw, recovered
    base = (eps - lv.detach().numpy()) / sv.detach().numpy()
    np.testing.assert_allclose(lv.grad.numpy(), (2 * y.detach().numpy()).sum(0), rtol=1e-9)
    np.testing.assert_allclose(sv.grad.numpy(), (2 * y.detach().numpy() * base).sum(0), rtol=1e-8)
    assert not d.sample((2,)).requires_grad


def test_sac_tanh_squashed_policy():
    mu, log_std = RNG.standard_normal((6, 2)), RNG.uniform(-1.5, 0.5, (6, 2))
    mv, mt = pair(mu, grad=True)
    sv, st = pair(log_std, grad=True)
    pre = RNG.standard_normal((6, 2)) * 3
    pre[0, 0] = 20.0  # saturated tanh: log(1 - tanh^2) would be -inf, torch's stable form is finite
    xv, xt = pair(pre)
    base_v, base_t = Normal(mv, sv.exp()), TD.Normal(mt, st.exp())
    pol_v = TransformedDistribution(base_v, [T.TanhTransform(cache_size=1)])
    pol_t = TD.TransformedDistribution(base_t, [TT.TanhTransform(cache_size=1)])
    # the usual SAC computation: squash a reparameterised pre-activation, correct with the jacobian
    av, at = T.TanhTransform()(xv), TT.TanhTransform()(xt)
    lp_v = (base_v.log_prob(xv) - T.TanhTransform().log_abs_det_jacobian(xv, av)).sum(-1)
    lp_t = (base_t.log_prob(xt) - TT.TanhTransform().log_abs_det_jacobian(xt, at)).sum(-1)
    close(lp_v, lp_t)
    assert np.isfinite(lp_v.detach().numpy()).all()
    check_grads(lp_v, lp_t, [mv, sv], [mt, st], RNG)
    # through the distribution on actions inside (-1, 1)
    inner_v, inner_t = pair(np.tanh(RNG.standard_normal((6, 2))))
    close(pol_v.log_prob(inner_v), pol_t.log_prob(inner_t), rtol=1e-8, atol=1e-10)
    # rsample then log_prob of the same tensor uses the cache (exact pre-activation) and backpropagates
    mv.grad = sv.grad = None
    pol_v = TransformedDistribution(Normal(mv, sv.exp()), [T.TanhTransform(cache_size=1)])
    a = pol_v.rsample()
    logp = Independent(pol_v, 1).log_prob(a)
    assert tuple(logp.shape) == (6,)
    logp.sum().backward()
    assert mv.grad is not None and sv.grad is not None


def test_transformed_distribution_errors():
    nv = Normal(vt.zeros(3, dtype=vt.float64), vt.ones(3, dtype=vt.float64))
    with pytest.raises(ValueError, match="Transform or"):
        TransformedDistribution(nv, "exp")
    with pytest.raises(ValueError, match="Transform or"):
        TransformedDistribution(nv, [T.ExpTransform(), 3])
    with pytest.raises(ValueError, match="at least 2"):
        TransformedDistribution(nv, [T.ReshapeTransform((1, 3), (3,))])
    d = TransformedDistribution(nv, T.ExpTransform(), validate_args=True)
    with pytest.raises(ValueError, match="support"):
        d.log_prob(vt.tensor([-1.0, 1.0, 2.0], dtype=vt.float64))
    assert repr(d) == "TransformedDistribution()"


def test_lognormal_is_a_transformed_distribution():
    from vibetensor.torch.distributions.lognormal import LogNormal
    (lv, lt), (sv, st) = pair(RNG.standard_normal((2, 3)), True), pair(RNG.uniform(0.3, 2.0, (2, 3)), True)
    dv, dt = LogNormal(lv, sv), TD.LogNormal(lt, st)
    assert isinstance(dv, TransformedDistribution) and isinstance(dv.transforms[0], T.ExpTransform)
    assert repr(dv) == repr(dt) == "LogNormal()"
    xv, xt = pair(RNG.uniform(0.1, 4.0, (5, 2, 3)))
    out = Outputs()
    out.add(dv.log_prob(xv), dt.log_prob(xt))
    out.add(dv.cdf(xv), dt.cdf(xt))
    out.add(dv.entropy(), dt.entropy())
    out.check_grads((5, 2, 3), [lv, sv], [lt, st], RNG)
    e = dv.expand((4, 2, 3))
    assert type(e) is LogNormal and e.batch_shape == (4, 2, 3)
    close(e.mean, dt.expand((4, 2, 3)).mean)
