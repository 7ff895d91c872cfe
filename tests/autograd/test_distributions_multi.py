"""Differential tests of the vector-event vt.distributions (Dirichlet, Multinomial, OneHotCategorical,
MultivariateNormal with each of its three parameterisations, Independent) against torch.distributions on random
float64 parameters: batch/event shapes with broadcasting, moments, log_prob, entropy and their gradients w.r.t.
the parameters, expand(), enumerate_support and the validate_args / constructor errors."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions.bernoulli import Bernoulli
from vibetensor.torch.distributions.dirichlet import Dirichlet
from vibetensor.torch.distributions.gamma import Gamma
from vibetensor.torch.distributions.independent import Independent
from vibetensor.torch.distributions.multinomial import Multinomial
from vibetensor.torch.distributions.multivariate_normal import MultivariateNormal
from vibetensor.torch.distributions.normal import Normal
from vibetensor.torch.distributions.one_hot_categorical import OneHotCategorical

from dist_helpers import Outputs, close, pair

TD = torch.distributions
RNG = np.random.default_rng(1)
GT = dict(rtol=1e-7, atol=1e-9)


def _compare(dv, dt, props, x_v, x_t, leaves_v, leaves_t, entropy=True, entropy_tol=None):
    assert tuple(dv.batch_shape) == tuple(dt.batch_shape) and tuple(dv.event_shape) == tuple(dt.event_shape)
    outs = Outputs()
    event_dims = tuple(range(-len(dt.event_shape), 0))
    for prop in props:
        close(getattr(dv, prop), getattr(dt, prop))
        outs.add(getattr(dv, prop).sum(event_dims) if event_dims else getattr(dv, prop),
                 getattr(dt, prop).sum(event_dims) if event_dims else getattr(dt, prop), compare=False)
    outs.add(dv.log_prob(x_v).sum(0), dt.log_prob(x_t).sum(0))
    if entropy:
        outs.add(dv.entropy(), dt.entropy(), **(entropy_tol or {}))
    outs.check_grads(tuple(dt.batch_shape), leaves_v, leaves_t, RNG, **GT)


@pytest.mark.parametrize("shape", [(3,), (2, 4), (2, 3, 2)])
def test_dirichlet(shape):
    c_v, c_t = pair(RNG.uniform(0.3, 3.0, shape), grad=True)
    dv, dt = Dirichlet(c_v), TD.Dirichlet(c_t)
    x = RNG.dirichlet(np.ones(shape[-1]), (3,) + shape[:-1])
    x_v, x_t = pair(x)
    _compare(dv, dt, ["mean", "variance", "stddev"], x_v, x_t, [c_v], [c_t])
    # mode, including the all-below-one vertex case
    c = RNG.uniform(0.2, 3.0, shape)
    c.reshape(-1, shape[-1])[0] = [0.5] * shape[-1]
    close(Dirichlet(vt.from_numpy(c.copy())).mode, TD.Dirichlet(torch.from_numpy(c.copy())).mode)
    e = dv.expand((5,) + shape[:-1])
    assert tuple(e.batch_shape) == (5,) + shape[:-1] and tuple(e.event_shape) == shape[-1:]
    close(e.log_prob(x_v[0]), dt.expand((5,) + shape[:-1]).log_prob(x_t[0]))


@pytest.mark.parametrize("shape", [(4,), (3, 5)])
@pytest.mark.parametrize("use_logits", [False, True])
def test_onehot_categorical(shape, use_logits):
    if use_logits:
        p_v, p_t = pair(RNG.standard_normal(shape) * 2, grad=True)
        dv, dt = OneHotCategorical(logits=p_v), TD.OneHotCategorical(logits=p_t)
    else:
        p_v, p_t = pair(RNG.uniform(0.1, 2.0, shape), grad=True)
        dv, dt = OneHotCategorical(probs=p_v), TD.OneHotCategorical(probs=p_t)
    idx = RNG.integers(0, shape[-1], (3,) + shape[:-1])
    x_v, x_t = pair(np.eye(shape[-1])[idx])
    _compare(dv, dt, ["mean", "variance", "probs", "logits"], x_v, x_t, [p_v], [p_t])
    close(dv.mode, dt.mode)
    close(dv.enumerate_support(), dt.enumerate_support())
    close(dv.enumerate_support(False), dt.enumerate_support(False))
    s = dv.sample((7,))
    assert tuple(s.shape) == (7,) + shape and (s.sum(-1).numpy() == 1).all()
    e = dv.expand((2,) + shape[:-1])
    assert tuple(e.batch_shape) == (2,) + shape[:-1]
    close(e.log_prob(x_v[0]), dt.expand((2,) + shape[:-1]).log_prob(x_t[0]))


@pytest.mark.parametrize("shape", [(3,), (2, 4)])
@pytest.mark.parametrize("use_logits", [False, True])
@pytest.mark.parametrize("total_count", [1, 5])
def test_multinomial(shape, use_logits, total_count):
    if use_logits:
        p_v, p_t = pair(RNG.standard_normal(shape), grad=True)
        dv, dt = Multinomial(total_count, logits=p_v), TD.Multinomial(total_count, logits=p_t)
    else:
        p_v, p_t = pair(RNG.uniform(0.1, 2.0, shape), grad=True)
        dv, dt = Multinomial(total_count, probs=p_v), TD.Multinomial(total_count, probs=p_t)
    x = RNG.multinomial(total_count, np.ones(shape[-1]) / shape[-1], (3,) + shape[:-1]).astype(np.float64)
    x_v, x_t = pair(x)
    # torch evaluates Multinomial's lgamma(total_count + 1) on an int64 tensor, i.e. in float32: ~1e-8 off.
    _compare(dv, dt, ["mean", "variance", "probs"], x_v, x_t, [p_v], [p_t], entropy_tol=dict(rtol=1e-7))
    s = dv.sample((6,))
    assert tuple(s.shape) == (6,) + shape and (s.sum(-1).numpy() == total_count).all()
    e = dv.expand((2,) + shape[:-1])
    close(e.log_prob(x_v[0]), dt.expand((2,) + shape[:-1]).log_prob(x_t[0]))
    # (torch's expanded Multinomial has no _binomial, so its entropy fails; compare with the unexpanded one)
    close(e.entropy(), dt.entropy().expand((2,) + shape[:-1]), rtol=1e-7)


def test_multinomial_zero_probability_and_errors():
    dv, dt = Multinomial(3, vt.tensor([0.0, 0.4, 0.6])), TD.Multinomial(3, torch.tensor([0.0, 0.4, 0.6]))
    close(dv.log_prob(vt.tensor([0.0, 1.0, 2.0])), dt.log_prob(torch.tensor([0.0, 1.0, 2.0])), rtol=1e-6)
    close(dv.entropy(), dt.entropy(), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="inhomogeneous total_count is not supported"):
        Multinomial(vt.tensor([2.0]), vt.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="within the support"):
        dv.log_prob(vt.tensor([1.0, 1.0, 2.0]))  # sums past total_count
    with pytest.raises(ValueError, match="within the support"):
        dv.log_prob(vt.tensor([-1.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="Simplex"):
        Multinomial(2, vt.tensor([-0.5, 1.5]))
    with pytest.raises(ValueError, match="within the support"):
        OneHotCategorical(vt.tensor([0.5, 0.5])).log_prob(vt.tensor([1.0, 1.0]))


def _spd(batch, n):
    a = RNG.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


MVN_SHAPES = [((3,), ()), ((2, 3), ()), ((3,), (4,)), ((4, 1, 2), (3,))]


@pytest.mark.parametrize("loc_shape,mat_batch", MVN_SHAPES)
@pytest.mark.parametrize("param", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_multivariate_normal(loc_shape, mat_batch, param):
    n = loc_shape[-1]
    m = _spd(mat_batch, n)
    if param == "scale_tril":
        m = np.linalg.cholesky(m)
    loc_v, loc_t = pair(RNG.standard_normal(loc_shape), grad=True)
    m_v, m_t = pair(m, grad=True)
    dv, dt = MultivariateNormal(loc_v, **{param: m_v}), TD.MultivariateNormal(loc_t, **{param: m_t})
    batch = tuple(dt.batch_shape)
    x_v, x_t = pair(RNG.standard_normal((2,) + batch + (n,)))
    _compare(dv, dt, ["mean", "mode", "variance", "stddev"], x_v, x_t, [loc_v, m_v], [loc_t, m_t])
    for prop in ["covariance_matrix", "precision_matrix", "scale_tril"]:
        close(getattr(dv, prop), getattr(dt, prop), **GT)
    e_v, e_t = dv.expand((5,) + batch), dt.expand((5,) + batch)
    assert tuple(e_v.batch_shape) == (5,) + batch
    close(e_v.log_prob(x_v[0]), e_t.log_prob(x_t[0]), **GT)
    close(e_v.covariance_matrix, e_t.covariance_matrix, **GT)
    s = dv.rsample((4,))
    assert tuple(s.shape) == (4,) + batch + (n,) and s.requires_grad


def test_multivariate_normal_errors():
    loc, cov = vt.zeros(2), vt.eye(2)
    with pytest.raises(ValueError, match="loc must be at least one-dimensional."):
        MultivariateNormal(vt.tensor(0.0), cov)
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix or precision_matrix or scale_tril"):
        MultivariateNormal(loc)
    with pytest.raises(ValueError, match="Exactly one of"):
        MultivariateNormal(loc, cov, scale_tril=cov)
    with pytest.raises(ValueError, match="scale_tril matrix must be at least two-dimensional"):
        MultivariateNormal(loc, scale_tril=vt.ones(2))
    with pytest.raises(ValueError, match="covariance_matrix matrix must be at least two-dimensional"):
        MultivariateNormal(loc, covariance_matrix=vt.ones(2))
    with pytest.raises(ValueError, match="PositiveDefinite"):
        MultivariateNormal(loc, vt.tensor([[1.0, 2.0], [2.0, 1.0]]))  # symmetric, indefinite
    with pytest.raises(ValueError, match="PositiveDefinite"):
        MultivariateNormal(loc, precision_matrix=vt.tensor([[1.0, 0.5], [0.0, 1.0]]))  # not symmetric
    with pytest.raises(ValueError, match="LowerCholesky"):
        MultivariateNormal(loc, scale_tril=vt.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="LowerCholesky"):
        MultivariateNormal(loc, scale_tril=vt.tensor([[1.0, 0.0], [0.5, -1.0]]))
    with pytest.raises(ValueError, match=r"IndependentConstraint\(Real\(\), 1\)"):
        MultivariateNormal(vt.tensor([0.0, math.nan]), cov)
    with pytest.raises(ValueError, match="right-most size of value must match event_shape"):
        MultivariateNormal(loc, cov).log_prob(vt.zeros(3))


@pytest.mark.parametrize("base_shape,ndims", [((3,), 1), ((2, 3), 1), ((2, 3), 2), ((4, 2, 3), 0)])
def test_independent_normal(base_shape, ndims):
    loc_v, loc_t = pair(RNG.standard_normal(base_shape), grad=True)
    sc_v, sc_t = pair(RNG.uniform(0.5, 2.0, base_shape), grad=True)
    dv = Independent(Normal(loc_v, sc_v), ndims)
    dt = TD.Independent(TD.Normal(loc_t, sc_t), ndims)
    x_v, x_t = pair(RNG.standard_normal((2,) + base_shape))
    _compare(dv, dt, ["mean", "variance"], x_v, x_t, [loc_v, sc_v], [loc_t, sc_t])
    assert repr(dv.support) == repr(dt.support) and dv.has_rsample
    batch = tuple(dt.batch_shape)
    e_v, e_t = dv.expand((5,) + batch), dt.expand((5,) + batch)
    assert tuple(e_v.batch_shape) == tuple(e_t.batch_shape) and tuple(e_v.event_shape) == tuple(e_t.event_shape)
    close(e_v.log_prob(x_v[0]), e_t.log_prob(x_t[0]))
    assert tuple(dv.rsample((3,)).shape) == (3,) + base_shape


def test_independent_of_dirichlet_and_errors():
    c_v, c_t = pair(RNG.uniform(0.5, 2.0, (2, 4, 3)), grad=True)
    dv, dt = Independent(Dirichlet(c_v), 1), TD.Independent(TD.Dirichlet(c_t), 1)
    x_v, x_t = pair(RNG.dirichlet(np.ones(3), (2, 4)))
    _compare(dv, dt, ["mean"], x_v.unsqueeze(0), x_t.unsqueeze(0), [c_v], [c_t])
    assert tuple(dv.event_shape) == (4, 3)
    assert dv.has_rsample
    with pytest.raises(ValueError, match=r"Expected reinterpreted_batch_ndims <= len\(base_distribution"):
        Independent(Normal(vt.zeros(3), vt.ones(3)), 2)
    b = Independent(Bernoulli(vt.full((2, 3), 0.5)), 1)
    assert not b.has_enumerate_support
    with pytest.raises(NotImplementedError, match="Enumeration over cartesian product is not implemented"):
        b.enumerate_support()
    assert Independent(Bernoulli(vt.full((2,), 0.5)), 0).enumerate_support().shape == (2, 2)
    assert repr(Independent(Gamma(vt.ones(2), vt.ones(2)), 1)).startswith("Independent(Gamma(")


def test_dirichlet_errors():
    with pytest.raises(ValueError, match="`concentration` parameter must be at least one-dimensional."):
        Dirichlet(vt.tensor(1.0))
    with pytest.raises(ValueError, match=r"IndependentConstraint\(GreaterThan\(lower_bound=0.0\), 1\)"):
        Dirichlet(vt.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="Simplex"):
        Dirichlet(vt.tensor([1.0, 1.0])).log_prob(vt.tensor([0.5, 0.6]))


def test_expand_of_the_older_families():
    from vibetensor.torch.distributions.categorical import Categorical
    from vibetensor.torch.distributions.uniform import Uniform
    p = RNG.uniform(0.1, 1.0, (3, 4))
    cases = [
        (Normal(vt.tensor([0.5, -1.0, 2.0]), vt.tensor([1.0, 2.0, 0.5])),
         TD.Normal(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 2.0, 0.5])), lambda: RNG.standard_normal(3)),
        (Uniform(vt.tensor([0.0, -1.0, 2.0]), vt.tensor([1.0, 2.0, 5.0])),
         TD.Uniform(torch.tensor([0.0, -1.0, 2.0]), torch.tensor([1.0, 2.0, 5.0])), lambda: np.array([0.5, 1.0, 3.0])),
        (Bernoulli(logits=vt.tensor([0.5, -1.0, 2.0])), TD.Bernoulli(logits=torch.tensor([0.5, -1.0, 2.0])),
         lambda: np.array([1.0, 0.0, 1.0])),
        (Categorical(vt.from_numpy(p.copy())), TD.Categorical(torch.from_numpy(p.copy())), lambda: np.array([0, 3, 2])),
    ]
    for dv, dt, value in cases:
        ev, et = dv.expand((2, 3)), dt.expand((2, 3))
        assert type(ev) is type(dv) and tuple(ev.batch_shape) == tuple(et.batch_shape) == (2, 3)
        x = value()
        close(ev.log_prob(vt.from_numpy(x.copy())), et.log_prob(torch.from_numpy(x.copy())), rtol=1e-6, atol=1e-6)
        close(ev.entropy(), et.entropy(), rtol=1e-6, atol=1e-6)
        assert tuple(ev.sample((4,)).shape) == (4, 2, 3)
    with pytest.raises(ValueError, match="within the support"):
        cases[2][0].expand((2, 3)).log_prob(vt.tensor([0.5, 0.0, 1.0]))  # validation carries over
