"""Differential tests of the elementwise vt.distributions families (Exponential, Laplace, LogNormal, Gumbel,
Cauchy, Gamma, Beta, Poisson, Binomial, Geometric) against torch.distributions on random float64 parameters:
shapes with batch dims and broadcasting, mean/mode/variance/stddev, log_prob, entropy, cdf/icdf and their
gradients w.r.t. the parameters, expand(), and the validate_args errors."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions.beta import Beta
from vibetensor.torch.distributions.binomial import Binomial
from vibetensor.torch.distributions.cauchy import Cauchy
from vibetensor.torch.distributions.exponential import Exponential
from vibetensor.torch.distributions.gamma import Gamma
from vibetensor.torch.distributions.geometric import Geometric
from vibetensor.torch.distributions.gumbel import Gumbel
from vibetensor.torch.distributions.laplace import Laplace
from vibetensor.torch.distributions.lognormal import LogNormal
from vibetensor.torch.distributions.poisson import Poisson

from dist_helpers import Outputs, check_grads, close, pair

TD = torch.distributions
RNG = np.random.default_rng(0)


def _param(kind, shape):
    if kind == "real":
        return RNG.standard_normal(shape)
    if kind == "pos":
        return RNG.uniform(0.3, 3.0, shape)
    if kind == "prob":
        return RNG.uniform(0.1, 0.9, shape)
    if kind == "count":
        return RNG.integers(0, 8, shape).astype(np.float64)
    raise AssertionError(kind)


def _value(kind, shape, dist_t):
    if kind == "real":
        return RNG.standard_normal(shape) * 2
    if kind == "pos":
        return RNG.uniform(0.05, 4.0, shape)
    if kind == "unit":
        return RNG.uniform(0.02, 0.98, shape)
    if kind == "count":
        return RNG.integers(0, 9, shape).astype(np.float64)
    if kind == "binom":  # at most the total count of each batch element
        n = dist_t.total_count.detach().numpy()
        return np.floor(RNG.uniform(0, 1, shape) * (np.broadcast_to(n, shape) + 1))
    raise AssertionError(kind)


# name: (vt class, torch class, [(argument, kind, differentiable)], value kind, has entropy, has cdf, has icdf)
FAMILIES = {
    "exponential": (Exponential, TD.Exponential, [("rate", "pos", True)], "pos", True, True, True),
    "laplace": (Laplace, TD.Laplace, [("loc", "real", True), ("scale", "pos", True)], "real", True, True, True),
    "lognormal": (LogNormal, TD.LogNormal, [("loc", "real", True), ("scale", "pos", True)], "pos", True, True,
                  True),
    "gumbel": (Gumbel, TD.Gumbel, [("loc", "real", True), ("scale", "pos", True)], "real", True, True, True),
    "cauchy": (Cauchy, TD.Cauchy, [("loc", "real", True), ("scale", "pos", True)], "real", True, True, True),
    "gamma": (Gamma, TD.Gamma, [("concentration", "pos", True), ("rate", "pos", True)], "pos", True, True, False),
    "beta": (Beta, TD.Beta, [("concentration1", "pos", True), ("concentration0", "pos", True)], "unit", True,
             False, False),
    "poisson": (Poisson, TD.Poisson, [("rate", "pos", True)], "count", False, False, False),
    "binomial_probs": (Binomial, TD.Binomial, [("total_count", "count", False), ("probs", "prob", True)],
                       "binom", True, False, False),
    "binomial_logits": (Binomial, TD.Binomial, [("total_count", "count", False), ("logits", "real", True)],
                        "binom", True, False, False),
    "geometric_probs": (Geometric, TD.Geometric, [("probs", "prob", True)], "count", True, False, False),
    "geometric_logits": (Geometric, TD.Geometric, [("logits", "real", True)], "count", True, False, False),
}
SHAPES = [[()], [(3,)], [(2, 3), (3,)], [(4, 1), (1, 5)]]


def _build(name, shapes):
    cls_v, cls_t, params, *_ = FAMILIES[name]
    shapes = (shapes * 2)[:len(params)]
    kw_v, kw_t, leaves_v, leaves_t = {}, {}, [], []
    for (arg, kind, diff), shape in zip(params, shapes):
        v, t = pair(_param(kind, shape), grad=diff)
        kw_v[arg], kw_t[arg] = v, t
        if diff:
            leaves_v.append(v)
            leaves_t.append(t)
    if name.startswith("binomial"):
        # Binomial's entropy needs one total count for the whole batch.
        n = float(RNG.integers(1, 8))
        kw_v["total_count"], kw_t["total_count"] = pair(np.full(shapes[0], n))
    return cls_v(**kw_v), cls_t(**kw_t), leaves_v, leaves_t


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_values_and_gradients(name, shapes):
    _, _, _, value_kind, has_entropy, has_cdf, has_icdf = FAMILIES[name]
    dv, dt, lv, lt = _build(name, shapes)
    assert tuple(dv.batch_shape) == tuple(dt.batch_shape) and tuple(dv.event_shape) == tuple(dt.event_shape)
    outs = Outputs()
    for prop in ["mean", "mode", "variance", "stddev"]:
        pv, pt = getattr(dv, prop), getattr(dt, prop)
        close(pv, pt)
        if np.isfinite(pt.detach().numpy()).all() and pt.requires_grad:
            outs.add(pv, pt, compare=False)
    x_v, x_t = pair(_value(value_kind, (2,) + tuple(dt.batch_shape), dt))
    outs.add(dv.log_prob(x_v).sum(0), dt.log_prob(x_t).sum(0))
    if has_entropy:
        outs.add(dv.entropy(), dt.entropy())
    else:
        with pytest.raises(NotImplementedError):
            dv.entropy()
    if has_cdf and name == "gamma":
        # torch's gammainc has no derivative in the concentration: values here, gradients in test_gamma_cdf.
        close(dv.cdf(x_v), dt.cdf(x_t), rtol=1e-8, atol=1e-10)
    elif has_cdf:
        outs.add(dv.cdf(x_v).sum(0), dt.cdf(x_t).sum(0))
    if has_icdf:
        u_v, u_t = pair(RNG.uniform(0.05, 0.95, tuple(dt.batch_shape)))
        outs.add(dv.icdf(u_v), dt.icdf(u_t), rtol=1e-7, atol=1e-9)  # erfinv is approximated more loosely
    outs.check_grads(tuple(dt.batch_shape), lv, lt, RNG, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_expand_and_value_broadcasting(name):
    dv, dt, _, _ = _build(name, [(3,)])
    ev, et = dv.expand((4, 3)), dt.expand((4, 3))
    assert type(ev) is type(dv) and tuple(ev.batch_shape) == tuple(et.batch_shape) == (4, 3)
    assert ev._validate_args == dv._validate_args
    x_v, x_t = pair(_value(FAMILIES[name][3], (4, 3), dt))
    close(ev.log_prob(x_v), et.log_prob(x_t))
    close(ev.mean, et.mean)
    assert tuple(ev.sample((2,)).shape) == (2, 4, 3)
    # A value with extra leading sample dims broadcasts against the batch.
    x_v, x_t = pair(_value(FAMILIES[name][3], (5, 1, 3), dt))
    close(dv.log_prob(x_v), dt.log_prob(x_t))
    with pytest.raises((RuntimeError, ValueError)):
        dv.expand((2,))


@pytest.mark.parametrize("cls_v,cls_t,args", [
    (Exponential, TD.Exponential, (2.0,)), (Laplace, TD.Laplace, (0.5, 2.0)), (LogNormal, TD.LogNormal, (0.5, 2.0)),
    (Gumbel, TD.Gumbel, (0.5, 2.0)), (Cauchy, TD.Cauchy, (0.5, 2.0)), (Gamma, TD.Gamma, (2.0, 3.0)),
    (Beta, TD.Beta, (2.0, 3.0)), (Poisson, TD.Poisson, (2.5,)), (Geometric, TD.Geometric, (0.3,)),
])
def test_python_number_parameters(cls_v, cls_t, args):
    dv, dt = cls_v(*args), cls_t(*args)
    assert tuple(dv.batch_shape) == tuple(dt.batch_shape) == ()
    close(dv.mean, dt.mean, rtol=1e-6, atol=1e-7)
    assert dv.mean.dtype == vt.float32
    assert tuple(dv.sample((3,)).shape) == (3,)
    assert repr(dv) == repr(dt)


def _check_message(fn_v, fn_t, exc):
    with pytest.raises(exc) as ev:
        fn_v()
    with pytest.raises(exc) as et:
        fn_t()
    return str(ev.value), str(et.value)


BAD_PARAMS = [
    (Exponential, TD.Exponential, dict(rate=[1.0, -1.0]), "GreaterThan(lower_bound=0.0)"),
    (Laplace, TD.Laplace, dict(loc=[0.0, math.nan], scale=[1.0, 1.0]), "Real()"),
    (Laplace, TD.Laplace, dict(loc=[0.0, 1.0], scale=[1.0, 0.0]), "GreaterThan(lower_bound=0.0)"),
    (LogNormal, TD.LogNormal, dict(loc=[0.0, 1.0], scale=[-1.0, 1.0]), "GreaterThan(lower_bound=0.0)"),
    (Gumbel, TD.Gumbel, dict(loc=[0.0, 1.0], scale=[-1.0, 1.0]), "GreaterThan(lower_bound=0.0)"),
    (Cauchy, TD.Cauchy, dict(loc=[0.0, 1.0], scale=[-1.0, 1.0]), "GreaterThan(lower_bound=0.0)"),
    (Gamma, TD.Gamma, dict(concentration=[0.0, 1.0], rate=[1.0, 1.0]), "GreaterThan(lower_bound=0.0)"),
    (Gamma, TD.Gamma, dict(concentration=[1.0, 1.0], rate=[1.0, -2.0]), "GreaterThan(lower_bound=0.0)"),
    (Beta, TD.Beta, dict(concentration1=[1.0, -1.0], concentration0=[1.0, 1.0]),
     "IndependentConstraint(GreaterThan(lower_bound=0.0), 1)"),
    (Poisson, TD.Poisson, dict(rate=[1.0, -0.5]), "GreaterThanEq(lower_bound=0.0)"),
    (Binomial, TD.Binomial, dict(total_count=[1.0, 2.5], probs=[0.5, 0.5]), "IntegerGreaterThan(lower_bound=0)"),
    (Binomial, TD.Binomial, dict(total_count=[1.0, -1.0], probs=[0.5, 0.5]), "IntegerGreaterThan(lower_bound=0)"),
    (Binomial, TD.Binomial, dict(total_count=[1.0, 1.0], probs=[0.5, 1.5]), "Interval(lower_bound=0.0, "),
    (Geometric, TD.Geometric, dict(probs=[0.5, 1.5]), "Interval(lower_bound=0.0, "),
    (Geometric, TD.Geometric, dict(probs=[0.5, 0.0]), "to be positive but found invalid values"),
]


@pytest.mark.parametrize("cls_v,cls_t,kwargs,needle", BAD_PARAMS)
def test_invalid_parameters(cls_v, cls_t, kwargs, needle):
    kv = {k: vt.tensor(v, dtype=vt.float64) for k, v in kwargs.items()}
    kt = {k: torch.tensor(v, dtype=torch.float64) for k, v in kwargs.items()}
    mv, mt = _check_message(lambda: cls_v(**kv), lambda: cls_t(**kt), ValueError)
    assert needle in mt and needle in mv, (mv, mt)
    cls_v(**kv, validate_args=False)  # no check when turned off


BAD_VALUES = [
    (Exponential(vt.tensor([1.0])), TD.Exponential(torch.tensor([1.0])), [-0.5]),
    (LogNormal(vt.tensor([0.0]), vt.tensor([1.0])), TD.LogNormal(torch.tensor([0.0]), torch.tensor([1.0])), [0.0]),
    (Gamma(vt.tensor([1.0]), vt.tensor([1.0])), TD.Gamma(torch.tensor([1.0]), torch.tensor([1.0])), [-1.0]),
    (Beta(vt.tensor([1.0]), vt.tensor([1.0])), TD.Beta(torch.tensor([1.0]), torch.tensor([1.0])), [1.5]),
    (Poisson(vt.tensor([1.0])), TD.Poisson(torch.tensor([1.0])), [1.5]),
    (Poisson(vt.tensor([1.0])), TD.Poisson(torch.tensor([1.0])), [-1.0]),
    (Binomial(3, vt.tensor([0.5])), TD.Binomial(3, torch.tensor([0.5])), [4.0]),
    (Geometric(vt.tensor([0.5])), TD.Geometric(torch.tensor([0.5])), [0.5]),
    (Laplace(vt.tensor([0.0]), vt.tensor([1.0])), TD.Laplace(torch.tensor([0.0]), torch.tensor([1.0])), [math.nan]),
]


@pytest.mark.parametrize("dv,dt,value", BAD_VALUES)
def test_invalid_values(dv, dt, value):
    mv, mt = _check_message(lambda: dv.log_prob(vt.tensor(value)), lambda: dt.log_prob(torch.tensor(value)),
                            ValueError)
    assert "to be within the support" in mv and "to be within the support" in mt
    # The support's repr (between the parentheses after 'support') is torch's.
    assert mv.split("support (")[1].split(")")[0] == mt.split("support (")[1].split(")")[0]


def test_other_errors():
    for cls in (Binomial, Geometric):
        with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified, but not both."):
            cls(probs=vt.tensor([0.5]), logits=vt.tensor([0.0]))
    with pytest.raises(NotImplementedError, match="Inhomogeneous total count not supported by `entropy`."):
        Binomial(vt.tensor([1.0, 2.0]), vt.tensor([0.5, 0.5])).entropy()
    with pytest.raises(NotImplementedError, match="by `enumerate_support`"):
        Binomial(vt.tensor([1.0, 2.0]), vt.tensor([0.5, 0.5])).enumerate_support()
    for d in (Poisson(1.0), Binomial(2, 0.5), Geometric(0.5)):
        assert not d.has_rsample
        with pytest.raises(NotImplementedError):
            d.rsample()
    for d in (Exponential(1.0), Laplace(0.0, 1.0), LogNormal(0.0, 1.0), Gumbel(0.0, 1.0), Cauchy(0.0, 1.0),
              Gamma(2.0, 1.0), Beta(2.0, 1.0)):
        assert d.has_rsample


def test_binomial_enumerate_support_and_edge_probs():
    dv, dt = Binomial(4, vt.tensor([[0.0, 0.3, 1.0]])), TD.Binomial(4, torch.tensor([[0.0, 0.3, 1.0]]))
    close(dv.enumerate_support(), dt.enumerate_support())
    close(dv.enumerate_support(False), dt.enumerate_support(False))
    x = [[0.0, 2.0, 4.0]]
    close(dv.log_prob(vt.tensor(x)), dt.log_prob(torch.tensor(x)), rtol=1e-5, atol=1e-5)
    close(dv.mode, dt.mode)
    close(dv.support.upper_bound, dt.support.upper_bound)


def test_geometric_probs_one_and_support():
    dv, dt = Geometric(vt.tensor([1.0, 0.5])), TD.Geometric(torch.tensor([1.0, 0.5]))
    x = [0.0, 3.0]
    close(dv.log_prob(vt.tensor(x)), dt.log_prob(torch.tensor(x)))
    assert repr(dv.support) == repr(dt.support)


def test_gamma_cdf_gradients():
    c_v, c_t = pair(RNG.uniform(0.2, 40.0, (2, 3)), grad=True)
    r_v, r_t = pair(RNG.uniform(0.3, 3.0, (3,)), grad=True)
    x = RNG.uniform(0.0, 30.0, (4, 2, 3))
    x[0, 0, 0] = 0.0
    x_v, x_t = pair(x, grad=True)
    out_v, out_t = Gamma(c_v, r_v).cdf(x_v), TD.Gamma(c_t.detach(), r_t).cdf(x_t)
    close(out_v, out_t, rtol=1e-8, atol=1e-10)  # torch's igamma itself is ~1e-10 off for large concentrations
    check_grads(out_v, out_t, [r_v, x_v], [r_t, x_t], RNG, rtol=1e-7, atol=1e-9)
    # d/dconcentration (torch has none): central differences of torch's own gammainc
    c_v.grad = None
    w = RNG.standard_normal(out_v.shape)
    (Gamma(c_v, r_v).cdf(x_v) * vt.from_numpy(w.copy())).sum().backward()
    h = 1e-6
    fd = [(TD.Gamma(c_t.detach() + s, r_t.detach()).cdf(x_t.detach()).numpy() * w).sum((0,)) for s in (h, -h)]
    np.testing.assert_allclose(c_v.grad.numpy(), (fd[0] - fd[1]) / (2 * h), rtol=1e-5, atol=1e-7)
    # at x = 0 the x-derivative is the density's limit: infinite below concentration 1, 1 at 1, 0 above
    xs = vt.zeros(3, dtype=vt.float64, requires_grad=True)
    Gamma(vt.tensor([0.5, 1.0, 2.0], dtype=vt.float64), 1.0).cdf(xs).sum().backward()
    assert xs.grad.numpy().tolist() == [math.inf, 1.0, 0.0]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_float32_parameters(name):
    cls_v, cls_t, params, value_kind, has_entropy, has_cdf, _ = FAMILIES[name]
    arrays = {arg: _param(kind, (4,)).astype(np.float32) for arg, kind, _ in params}
    if name.startswith("binomial"):
        arrays["total_count"] = np.full(4, 5.0, dtype=np.float32)
    dv = cls_v(**{k: vt.from_numpy(a.copy()) for k, a in arrays.items()})
    dt = cls_t(**{k: torch.from_numpy(a.copy()) for k, a in arrays.items()})
    x = _value(value_kind, (4,), dt).astype(np.float32)
    lp = dv.log_prob(vt.from_numpy(x.copy()))
    assert lp.dtype == vt.float32
    close(lp, dt.log_prob(torch.from_numpy(x.copy())), rtol=2e-5, atol=2e-5)
    if has_entropy:
        close(dv.entropy(), dt.entropy(), rtol=2e-5, atol=2e-5)
    if has_cdf:
        close(dv.cdf(vt.from_numpy(x.copy())), dt.cdf(torch.from_numpy(x.copy())), rtol=2e-5, atol=2e-5)
    s = dv.sample((3,))
    assert s.dtype == vt.float32 and tuple(s.shape) == (3, 4)
