"""Statistical tests of sampling in the new vt.distributions (the random streams differ from torch's, so draws
are checked, not compared): the vt-op gamma / Poisson / binomial samplers against their exact CDFs (a
Kolmogorov-Smirnov bound, or the pmf for discrete ones) and moments over many draws with a fixed vt.manual_seed;
sample/rsample shapes, dtypes, support, graph (rsample differentiable, sample not) and reproducibility."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions._samplers import binomial, poisson, standard_gamma
from vibetensor.torch.distributions.beta import Beta
from vibetensor.torch.distributions.binomial import Binomial
from vibetensor.torch.distributions.cauchy import Cauchy
from vibetensor.torch.distributions.dirichlet import Dirichlet
from vibetensor.torch.distributions.exponential import Exponential
from vibetensor.torch.distributions.gamma import Gamma
from vibetensor.torch.distributions.geometric import Geometric
from vibetensor.torch.distributions.gumbel import Gumbel
from vibetensor.torch.distributions.independent import Independent
from vibetensor.torch.distributions.laplace import Laplace
from vibetensor.torch.distributions.lognormal import LogNormal
from vibetensor.torch.distributions.multinomial import Multinomial
from vibetensor.torch.distributions.multivariate_normal import MultivariateNormal
from vibetensor.torch.distributions.normal import Normal
from vibetensor.torch.distributions.one_hot_categorical import OneHotCategorical
from vibetensor.torch.distributions.poisson import Poisson

TD = torch.distributions
N = 20000
KS_BOUND = 1.95 / math.sqrt(N)  # Kolmogorov-Smirnov critical value at the 0.1% level


def _ks(draws, cdf):
    """Largest gap between the empirical CDF of draws and the exact cdf (a numpy callable), at and just below
    each distinct value. The smallest value is exempt from the left check: the samplers clamp draws up to the
    dtype's smallest normal number (as torch does), which puts a point mass there."""
    values, counts = np.unique(draws, return_counts=True)
    emp = np.cumsum(counts) / len(draws)
    f = cdf(values)
    left = np.abs(np.concatenate([[0.0], emp[:-1]]) - f)[1:]
    return max(np.abs(emp - f).max(), left.max() if len(left) else 0.0)


@pytest.mark.parametrize("alpha", [0.01, 0.3, 1.0, 2.5, 40.0])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_standard_gamma_ks_and_moments(alpha, dtype):
    vt.manual_seed(11)
    x = standard_gamma(vt.full((N,), alpha, dtype=getattr(vt, dtype)))
    assert x.dtype == getattr(vt, dtype) and tuple(x.shape) == (N,) and not x.requires_grad
    a = x.numpy().astype(np.float64)
    assert (a > 0).all()
    cdf = lambda v: torch.special.gammainc(torch.tensor(alpha, dtype=torch.float64), torch.from_numpy(v)).numpy()
    assert _ks(a, cdf) < KS_BOUND
    assert abs(a.mean() - alpha) < 5 * math.sqrt(alpha / N)
    # The sample variance's standard error involves the 4th moment: 2 alpha^2 + 6 alpha over N.
    assert abs(a.var() - alpha) < 5 * math.sqrt((2 * alpha ** 2 + 6 * alpha) / N)


def test_standard_gamma_mixed_alphas_keeps_positions():
    vt.manual_seed(3)
    alphas = np.array([0.2, 5.0, 100.0, 1.0])
    x = standard_gamma(vt.from_numpy(np.tile(alphas, (N, 1)))).numpy()
    np.testing.assert_allclose(x.mean(0), alphas, rtol=0.1)
    vt.manual_seed(3)
    np.testing.assert_array_equal(standard_gamma(vt.from_numpy(np.tile(alphas, (N, 1)))).numpy(), x)


@pytest.mark.parametrize("rate", [0.0, 0.4, 3.0, 9.5, 10.0, 35.0, 800.0])
def test_poisson_sampler_pmf_and_moments(rate):
    vt.manual_seed(5)
    x = poisson(vt.full((N,), rate, dtype=vt.float64)).numpy()
    assert (x == np.floor(x)).all() and (x >= 0).all()
    if rate == 0:
        assert (x == 0).all()
        return
    assert abs(x.mean() - rate) < 5 * math.sqrt(rate / N)
    assert abs(x.var() - rate) < 5 * math.sqrt((2 * rate ** 2 + rate) / N)
    # The discrete KS distance between the empirical and the exact Poisson CDF on the integers.
    ks = np.arange(int(x.max()) + 1)
    exact = TD.Poisson(torch.tensor(rate, dtype=torch.float64)).log_prob(torch.from_numpy(ks.astype(np.float64)))
    exact_cdf = np.cumsum(np.exp(exact.numpy()))
    emp_cdf = np.cumsum(np.bincount(x.astype(np.int64), minlength=len(ks))) / N
    assert np.abs(emp_cdf - exact_cdf).max() < KS_BOUND


@pytest.mark.parametrize("n,p", [(1, 0.3), (10, 0.5), (300, 0.05), (7, 0.0), (7, 1.0), (0, 0.5)])
def test_binomial_sampler(n, p):
    vt.manual_seed(8)
    x = binomial(vt.full((N,), float(n), dtype=vt.float64), vt.full((N,), p, dtype=vt.float64)).numpy()
    assert (x >= 0).all() and (x <= n).all()
    var = n * p * (1 - p)
    assert abs(x.mean() - n * p) < 5 * math.sqrt(var / N) + 1e-12
    if var > 0:
        assert abs(x.var() - var) / var < 0.1


CONTINUOUS = [  # (vt distribution, torch twin for the exact cdf and moments)
    (lambda m: m.Exponential(m.tensor([0.5, 2.0], dtype=m.float64)), True),
    (lambda m: m.Laplace(m.tensor([-1.0, 2.0], dtype=m.float64), m.tensor([0.5, 2.0], dtype=m.float64)), True),
    (lambda m: m.LogNormal(m.tensor([-1.0, 0.5], dtype=m.float64), m.tensor([0.3, 0.6], dtype=m.float64)), True),
    (lambda m: m.Gumbel(m.tensor([-1.0, 2.0], dtype=m.float64), m.tensor([0.5, 2.0], dtype=m.float64)), True),
    (lambda m: m.Cauchy(m.tensor([-1.0, 2.0], dtype=m.float64), m.tensor([0.5, 2.0], dtype=m.float64)), True),
    (lambda m: m.Gamma(m.tensor([0.5, 4.0], dtype=m.float64), m.tensor([2.0, 0.5], dtype=m.float64)), True),
    (lambda m: m.Beta(m.tensor([0.5, 4.0], dtype=m.float64), m.tensor([2.0, 0.7], dtype=m.float64)), True),
]


class _VtNamespace:
    """The vt classes under torch.distributions-style names, so one lambda builds both twins."""
    Exponential, Laplace, LogNormal, Gumbel, Cauchy, Gamma, Beta = (Exponential, Laplace, LogNormal, Gumbel,
                                                                     Cauchy, Gamma, Beta)
    tensor, float64 = staticmethod(vt.tensor), vt.float64


class _TorchNamespace:
    Exponential, Laplace, LogNormal, Gumbel, Cauchy, Gamma, Beta = (TD.Exponential, TD.Laplace, TD.LogNormal,
                                                                     TD.Gumbel, TD.Cauchy, TD.Gamma, TD.Beta)
    tensor, float64 = staticmethod(torch.tensor), torch.float64


def _torch_cdf(dt, x):
    if isinstance(dt, TD.Gamma):
        return torch.special.gammainc(dt.concentration, dt.rate * x)
    if isinstance(dt, TD.Beta):  # no closed-form cdf in torch: integrate the density numerically
        grid = torch.linspace(0, 1, 200001, dtype=torch.float64)[1:-1].unsqueeze(-1)
        dens = dt.log_prob(grid).exp()
        cum = torch.cumsum(dens, 0) / dens.sum(0)
        idx = torch.searchsorted(grid.squeeze(-1).contiguous(), x.T.contiguous()).T.clamp(max=grid.shape[0] - 1)
        return torch.gather(cum, 0, idx)
    return dt.cdf(x)


@pytest.mark.parametrize("k", range(len(CONTINUOUS)))
def test_continuous_sampling(k):
    build, reparam = CONTINUOUS[k]
    dv, dt = build(_VtNamespace), build(_TorchNamespace)
    vt.manual_seed(21)
    s = dv.sample((N,))
    assert tuple(s.shape) == (N, 2) and s.dtype == vt.float64 and not s.requires_grad
    cdf = _torch_cdf(dt, torch.from_numpy(np.sort(s.numpy(), axis=0))).numpy()
    for b in range(2):
        n = np.arange(1, N + 1) / N
        assert max((n - cdf[:, b]).max(), (cdf[:, b] - n + 1 / N).max()) < KS_BOUND
    assert dv.has_rsample == reparam
    assert tuple(dv.sample().shape) == (2,) and tuple(dv.sample((3, 4)).shape) == (3, 4, 2)
    if reparam:
        assert tuple(dv.rsample((3,)).shape) == (3, 2)
    vt.manual_seed(4)
    first = dv.sample((5,)).numpy()
    vt.manual_seed(4)
    np.testing.assert_array_equal(dv.sample((5,)).numpy(), first)


@pytest.mark.parametrize("cls", [Exponential, Laplace, LogNormal, Gumbel, Cauchy])
def test_rsample_gradient_is_the_reparameterisation(cls):
    # Each draw is a deterministic function of the parameters at fixed noise: the gradient of the draw equals
    # the finite difference of redrawing with the same seed.
    args = [0.7] if cls is Exponential else [0.3, 1.4]
    leaves = [vt.tensor(a, dtype=vt.float64, requires_grad=True) for a in args]
    vt.manual_seed(9)
    s = cls(*leaves).rsample((50,))
    assert s.requires_grad
    s.sum().backward()
    for i in range(len(args)):
        def total(delta):
            shifted = [a + (delta if j == i else 0.0) for j, a in enumerate(args)]
            vt.manual_seed(9)
            return cls(*[vt.tensor(a, dtype=vt.float64) for a in shifted]).rsample((50,)).sum().item()
        fd = (total(1e-6) - total(-1e-6)) / 2e-6
        assert abs(leaves[i].grad.item() - fd) < 1e-4 * max(1.0, abs(fd))


def test_discrete_sampling_moments_and_support():
    vt.manual_seed(13)
    rate = vt.tensor([0.5, 20.0], dtype=vt.float64)
    s = Poisson(rate).sample((N,)).numpy()
    np.testing.assert_allclose(s.mean(0), [0.5, 20.0], rtol=0.05)
    s = Geometric(vt.tensor([0.2, 0.9])).sample((N,))
    assert s.dtype == vt.float32 and (s.numpy() >= 0).all() and (s.numpy() % 1 == 0).all()
    np.testing.assert_allclose(s.numpy().mean(0), [4.0, 1 / 0.9 - 1], rtol=0.05, atol=0.01)
    b = Binomial(vt.tensor([[5.0], [40.0]]), vt.tensor([0.3, 0.8]))
    s = b.sample((N,)).numpy()
    assert s.shape == (N, 2, 2) and (s <= np.array([[5.0], [40.0]])).all()
    np.testing.assert_allclose(s.mean(0), [[1.5, 4.0], [12.0, 32.0]], rtol=0.03)


def test_vector_sampling():
    vt.manual_seed(17)
    c = np.array([[0.5, 1.0, 3.0], [2.0, 2.0, 2.0]])
    s = Dirichlet(vt.from_numpy(c.copy())).sample((N,)).numpy()
    assert s.shape == (N, 2, 3) and (s > 0).all()
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s.mean(0), c / c.sum(-1, keepdims=True), atol=0.01)
    p = np.array([0.2, 0.3, 0.5])
    s = Multinomial(10, vt.from_numpy(p.copy())).sample((N,)).numpy()
    assert s.shape == (N, 3) and (s.sum(-1) == 10).all()
    np.testing.assert_allclose(s.mean(0), 10 * p, rtol=0.03)
    np.testing.assert_allclose(s.var(0), 10 * p * (1 - p), rtol=0.06)
    s = OneHotCategorical(vt.from_numpy(p.copy())).sample((N,)).numpy()
    np.testing.assert_allclose(s.mean(0), p, atol=0.015)
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    for kw in [dict(covariance_matrix=cov), dict(precision_matrix=np.linalg.inv(cov)),
               dict(scale_tril=np.linalg.cholesky(cov))]:
        d = MultivariateNormal(vt.tensor([1.0, -1.0, 0.0], dtype=vt.float64),
                               **{k: vt.from_numpy(v.copy()) for k, v in kw.items()})
        s = d.sample((N,)).numpy()
        np.testing.assert_allclose(s.mean(0), [1.0, -1.0, 0.0], atol=0.05)
        np.testing.assert_allclose(np.cov(s.T), cov, atol=0.06)
    s = Independent(Normal(vt.zeros(4, 3), vt.ones(4, 3)), 2).sample((5,))
    assert tuple(s.shape) == (5, 4, 3)


def test_multivariate_normal_rsample_gradient():
    loc = vt.tensor([0.5, -0.5], dtype=vt.float64, requires_grad=True)
    tril = vt.tensor([[1.0, 0.0], [0.4, 0.7]], dtype=vt.float64, requires_grad=True)
    vt.manual_seed(2)
    s = MultivariateNormal(loc, scale_tril=tril).rsample((6,))
    s.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [6.0, 6.0])
    eps = np.linalg.solve(tril.detach().numpy(), (s.detach().numpy() - loc.detach().numpy()).T)
    # d(sum of L eps)/dL[i, j] = sum over draws of eps_j for every row i (the upper zeros too, as in torch)
    expected = np.tile(eps.sum(1), (2, 1))
    np.testing.assert_allclose(tril.grad.numpy(), expected, rtol=1e-10, atol=1e-12)
