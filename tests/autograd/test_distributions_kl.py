"""kl_divergence of the new vt.distributions against torch.distributions.kl_divergence on random float64
parameters: every pair torch registers among them and the older four families (same family and cross family,
closed form or infinite), with broadcast batch shapes, gradients w.r.t. the parameters of both sides, and the
errors torch raises."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
import vibetensor.torch.distributions.kl_more  # noqa: F401  (registers the pairs)
from vibetensor.torch.distributions.bernoulli import Bernoulli
from vibetensor.torch.distributions.beta import Beta
from vibetensor.torch.distributions.binomial import Binomial
from vibetensor.torch.distributions.categorical import Categorical
from vibetensor.torch.distributions.cauchy import Cauchy
from vibetensor.torch.distributions.dirichlet import Dirichlet
from vibetensor.torch.distributions.exponential import Exponential
from vibetensor.torch.distributions.gamma import Gamma
from vibetensor.torch.distributions.geometric import Geometric
from vibetensor.torch.distributions.gumbel import Gumbel
from vibetensor.torch.distributions.independent import Independent
from vibetensor.torch.distributions.kl import kl_divergence
from vibetensor.torch.distributions.laplace import Laplace
from vibetensor.torch.distributions.lognormal import LogNormal
from vibetensor.torch.distributions.multivariate_normal import MultivariateNormal
from vibetensor.torch.distributions.normal import Normal
from vibetensor.torch.distributions.one_hot_categorical import OneHotCategorical
from vibetensor.torch.distributions.poisson import Poisson
from vibetensor.torch.distributions.uniform import Uniform

from dist_helpers import check_grads, close, pair

TD = torch.distributions
RNG = np.random.default_rng(2)
GT = dict(rtol=1e-7, atol=1e-9)


def _arr(kind, shape):
    return {"real": lambda: RNG.standard_normal(shape), "pos": lambda: RNG.uniform(0.4, 3.0, shape),
            "prob": lambda: RNG.uniform(0.1, 0.9, shape), "low": lambda: RNG.uniform(0.05, 0.3, shape),
            "high": lambda: RNG.uniform(0.6, 0.95, shape), "wide_low": lambda: RNG.uniform(-2.0, -1.0, shape),
            "wide_high": lambda: RNG.uniform(1.5, 2.5, shape)}[kind]()


SIMPLE = {  # name: (vt class, torch class, parameter kinds in constructor order)
    "Normal": (Normal, TD.Normal, ["real", "pos"]), "Laplace": (Laplace, TD.Laplace, ["real", "pos"]),
    "Gumbel": (Gumbel, TD.Gumbel, ["real", "pos"]), "Cauchy": (Cauchy, TD.Cauchy, ["real", "pos"]),
    "LogNormal": (LogNormal, TD.LogNormal, ["real", "pos"]), "Exponential": (Exponential, TD.Exponential, ["pos"]),
    "Gamma": (Gamma, TD.Gamma, ["pos", "pos"]), "Beta": (Beta, TD.Beta, ["pos", "pos"]),
    "Poisson": (Poisson, TD.Poisson, ["pos"]), "Geometric": (Geometric, TD.Geometric, ["prob"]),
    "Bernoulli": (Bernoulli, TD.Bernoulli, ["prob"]),
    "Uniform01": (Uniform, TD.Uniform, ["low", "high"]),  # inside (0, 1): p of Uniform-Beta/Gamma/Exponential
    "UniformWide": (Uniform, TD.Uniform, ["wide_low", "wide_high"]),  # covers (0, 1): q of Beta-Uniform
}


def make(name, shape):
    """(vt distribution, torch distribution, vt leaves, torch leaves) with the given batch shape."""
    if name in SIMPLE:
        cls_v, cls_t, kinds = SIMPLE[name]
        pairs = [pair(_arr(k, shape), grad=True) for k in kinds]
        return cls_v(*[p[0] for p in pairs]), cls_t(*[p[1] for p in pairs]), [p[0] for p in pairs], \
            [p[1] for p in pairs]
    if name in ("Dirichlet", "Categorical", "OneHotCategorical"):
        v, t = pair(RNG.uniform(0.3, 3.0, shape + (4,)), grad=True)
        cls_v, cls_t = {"Dirichlet": (Dirichlet, TD.Dirichlet), "Categorical": (Categorical, TD.Categorical),
                        "OneHotCategorical": (OneHotCategorical, TD.OneHotCategorical)}[name]
        return cls_v(v), cls_t(t), [v], [t]
    if name == "Binomial":
        v, t = pair(_arr("prob", shape), grad=True)
        return Binomial(6, v), TD.Binomial(6, t), [v], [t]
    if name == "MultivariateNormal":
        loc_v, loc_t = pair(RNG.standard_normal(shape + (3,)), grad=True)
        a = RNG.standard_normal((3, 3))
        tril_v, tril_t = pair(np.linalg.cholesky(a @ a.T + 3 * np.eye(3)), grad=True)
        return MultivariateNormal(loc_v, scale_tril=tril_v), TD.MultivariateNormal(loc_t, scale_tril=tril_t), \
            [loc_v, tril_v], [loc_t, tril_t]
    if name == "IndependentNormal":
        dv, dt, lv, lt = make("Normal", shape + (3,))
        return Independent(dv, 1), TD.Independent(dt, 1), lv, lt
    raise AssertionError(name)


FINITE = [
    ("Exponential", "Exponential"), ("Gamma", "Gamma"), ("Beta", "Beta"), ("Dirichlet", "Dirichlet"),
    ("Laplace", "Laplace"), ("Poisson", "Poisson"), ("Geometric", "Geometric"), ("Binomial", "Binomial"),
    ("Gumbel", "Gumbel"), ("Cauchy", "Cauchy"), ("LogNormal", "LogNormal"),
    ("OneHotCategorical", "OneHotCategorical"), ("MultivariateNormal", "MultivariateNormal"),
    ("IndependentNormal", "IndependentNormal"), ("Normal", "Normal"), ("Categorical", "Categorical"),
    ("Exponential", "Gamma"), ("Gamma", "Exponential"), ("Exponential", "Normal"), ("Gamma", "Normal"),
    ("Laplace", "Normal"), ("Gumbel", "Normal"), ("Beta", "Normal"), ("Beta", "Exponential"), ("Beta", "Gamma"),
    ("Beta", "UniformWide"), ("Exponential", "Gumbel"), ("Gamma", "Gumbel"), ("Normal", "Gumbel"),
    ("Normal", "Laplace"), ("Uniform01", "Exponential"), ("Uniform01", "Gamma"), ("Uniform01", "Normal"),
    ("Uniform01", "Gumbel"), ("Uniform01", "Beta"), ("Bernoulli", "Poisson"),
]
INFINITE = [
    ("Exponential", "Beta"), ("Exponential", "Uniform01"), ("Gamma", "Beta"), ("Gamma", "Uniform01"),
    ("Normal", "Beta"), ("Normal", "Uniform01"), ("Normal", "Exponential"), ("Normal", "Gamma"),
    ("Laplace", "Beta"), ("Laplace", "Uniform01"), ("Laplace", "Exponential"), ("Laplace", "Gamma"),
    ("Gumbel", "Beta"), ("Gumbel", "Uniform01"), ("Gumbel", "Exponential"), ("Gumbel", "Gamma"),
    ("Poisson", "Bernoulli"), ("Poisson", "Binomial"), ("UniformWide", "Beta"), ("UniformWide", "Exponential"),
    ("UniformWide", "Gamma"), ("Beta", "Uniform01"),
]
BATCHES = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((4, 1), (1, 2))]


@pytest.mark.parametrize("shapes", BATCHES)
@pytest.mark.parametrize("p_name,q_name", FINITE)
def test_finite_kl(p_name, q_name, shapes):
    pv, pt, plv, plt = make(p_name, shapes[0])
    qv, qt, qlv, qlt = make(q_name, shapes[1])
    # torch's masked writes fail on some broadcast pairs (Uniform-Beta, ...): give torch expanded copies.
    batch = torch.broadcast_shapes(pt.batch_shape, qt.batch_shape)
    kv, kt = kl_divergence(pv, qv), TD.kl_divergence(pt.expand(batch), qt.expand(batch))
    assert np.isfinite(kt.detach().numpy()).all()
    close(kv, kt, **GT)
    check_grads(kv, kt, plv + qlv, plt + qlt, RNG, **GT)


@pytest.mark.parametrize("p_name,q_name", INFINITE)
def test_infinite_kl(p_name, q_name):
    pv, pt, _, _ = make(p_name, (3,))
    qv, qt, _, _ = make(q_name, (3,))
    kv, kt = kl_divergence(pv, qv), TD.kl_divergence(pt, qt)
    assert np.isposinf(kt.detach().numpy()).all()
    close(kv, kt)


def test_partially_infinite_kl():
    # Binomial with a larger count on p's side, Uniform whose support is not covered elementwise
    pv, pt = Binomial(vt.tensor([3.0, 5.0]), vt.tensor([0.3, 0.6])), TD.Binomial(torch.tensor([3.0, 5.0]),
                                                                                torch.tensor([0.3, 0.6]))
    qv, qt = Binomial(3, vt.tensor([0.5, 0.5])), TD.Binomial(3, torch.tensor([0.5, 0.5]))
    close(kl_divergence(pv, qv), TD.kl_divergence(pt, qt), rtol=1e-6)
    u = [[-0.5, 0.2], [0.6, 0.9]]
    close(kl_divergence(Uniform(vt.tensor(u[0]), vt.tensor(u[1])), Exponential(vt.tensor([1.0, 2.0]))),
          TD.kl_divergence(TD.Uniform(torch.tensor(u[0]), torch.tensor(u[1])), TD.Exponential(torch.tensor([1., 2.]))),
          rtol=1e-6)
    c = [[0.0, 0.5], [1.0, 0.5]]  # a zero category on one side
    close(kl_divergence(OneHotCategorical(vt.tensor(c)), OneHotCategorical(vt.tensor(c[::-1]))),
          TD.kl_divergence(TD.OneHotCategorical(torch.tensor(c)), TD.OneHotCategorical(torch.tensor(c[::-1]))))


@pytest.mark.parametrize("p_param,q_param", [("covariance_matrix", "precision_matrix"),
                                             ("precision_matrix", "scale_tril")])
def test_mvn_kl_mixed_parameterisations(p_param, q_param):
    def build(param, batch):
        loc = RNG.standard_normal(batch + (2,))
        a = RNG.standard_normal(batch + (2, 2))
        m = a @ np.swapaxes(a, -1, -2) + 2 * np.eye(2)
        m = np.linalg.cholesky(m) if param == "scale_tril" else m
        (lv, lt), (mv, mt) = pair(loc, grad=True), pair(m, grad=True)
        return (MultivariateNormal(lv, **{param: mv}), TD.MultivariateNormal(lt, **{param: mt}), [lv, mv], [lt, mt])
    pv, pt, plv, plt = build(p_param, (3,))
    qv, qt, qlv, qlt = build(q_param, (4, 1))
    kv, kt = kl_divergence(pv, qv), TD.kl_divergence(pt, qt)
    close(kv, kt, **GT)
    check_grads(kv, kt, plv + qlv, plt + qlt, RNG, **GT)


def test_kl_errors():
    with pytest.raises(ValueError, match="different event shapes cannot be computed"):
        kl_divergence(MultivariateNormal(vt.zeros(2), vt.eye(2)), MultivariateNormal(vt.zeros(3), vt.eye(3)))
    n = Normal(vt.zeros(2, 3), vt.ones(2, 3))
    with pytest.raises(NotImplementedError):
        kl_divergence(Independent(n, 1), Independent(n, 2))
    with pytest.raises(NotImplementedError, match="q.total_count > p.total_count"):
        kl_divergence(Binomial(2, vt.tensor([0.5])), Binomial(3, vt.tensor([0.5])))
    with pytest.raises(NotImplementedError, match="No KL\\(p \\|\\| q\\) is implemented for p type Cauchy and q "
                       "type Normal"):
        kl_divergence(Cauchy(0.0, 1.0), Normal(0.0, 1.0))
