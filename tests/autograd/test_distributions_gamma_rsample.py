"""The implicit reparameterisation gradient of the gamma family's rsample (Gamma, Dirichlet, Beta): dx/dalpha of
standard-gamma draws against a finite difference of torch's regularised incomplete gamma (the exact derivative
at fixed CDF level) and against torch._standard_gamma_grad (an approximation, so loosely), then unbiasedness:
the mean pathwise gradient over many draws equals the gradient of the exact mean."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.distributions._gamma_rsample import gammainc_lower, standard_gamma_grad, standard_gamma_rsample
from vibetensor.torch.distributions.beta import Beta
from vibetensor.torch.distributions.dirichlet import Dirichlet
from vibetensor.torch.distributions.gamma import Gamma

N = 20000


def _exact_grad(a, x, h=1e-6):
    """-(dP/da) / density by central differences of whichever of P and Q = 1 - P is the smaller (no
    cancellation against 1)."""
    a, x = torch.from_numpy(a), torch.from_numpy(x)
    lower = torch.special.gammainc(a, x) < 0.5
    p = lambda s: torch.where(lower, torch.special.gammainc(s, x), -torch.special.gammaincc(s, x))
    log_density = (a - 1) * x.log() - x - torch.lgamma(a)
    return (-(p(a + h) - p(a - h)) / (2 * h) / log_density.exp()).numpy()


@pytest.mark.parametrize("alpha", [0.02, 0.3, 1.0, 4.0, 60.0, 900.0])
def test_standard_gamma_grad_matches_exact_derivative(alpha):
    # x at CDF levels spread over the body and both tails of Gamma(alpha, 1)
    levels = torch.tensor([1e-6, 0.01, 0.2, 0.5, 0.8, 0.99, 1 - 1e-6], dtype=torch.float64)
    x = _gamma_quantiles(alpha, levels)
    a = np.full_like(x, alpha)
    got = standard_gamma_grad(vt.from_numpy(a.copy()), vt.from_numpy(x.copy())).numpy()
    np.testing.assert_allclose(got, _exact_grad(a, x), rtol=2e-6)
    # torch's fitted approximation is off by up to ~1% in the extreme tails: compare it on the body only.
    approx = torch._standard_gamma_grad(torch.from_numpy(a), torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got[1:-1], approx[1:-1], rtol=2e-3)
    # the same series' value: the regularised lower incomplete gamma at those points
    p = gammainc_lower(vt.from_numpy(a.copy()), vt.from_numpy(x.copy())).numpy()
    np.testing.assert_allclose(p, torch.special.gammainc(torch.from_numpy(a), torch.from_numpy(x)).numpy(),
                               rtol=1e-8, atol=1e-14)


def _gamma_quantiles(alpha, levels):
    # Bisection on torch's gammainc: plain and exact enough for choosing test points.
    lo = torch.zeros_like(levels)
    hi = torch.full_like(levels, alpha + 60 * math.sqrt(alpha) + 60)
    for _ in range(200):
        mid = (lo + hi) / 2
        below = torch.special.gammainc(torch.tensor(alpha, dtype=torch.float64), mid) < levels
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return ((lo + hi) / 2).numpy()


def test_standard_gamma_rsample_backward_uses_the_grad():
    alpha = vt.tensor([[0.4, 3.0], [12.0, 0.9]], dtype=vt.float64, requires_grad=True)
    vt.manual_seed(1)
    x = standard_gamma_rsample(alpha)
    w = vt.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=vt.float64)
    (x * w).sum().backward()
    expected = w * standard_gamma_grad(alpha.detach(), x.detach())
    np.testing.assert_allclose(alpha.grad.numpy(), expected.numpy(), rtol=1e-12)
    f32 = vt.tensor([2.0], requires_grad=True)
    standard_gamma_rsample(f32).sum().backward()
    assert f32.grad.dtype == vt.float32


def _mean_and_se(a):
    return a.mean(0), a.std(0) / math.sqrt(a.shape[0])


def test_gamma_rsample_gradient_is_unbiased():
    # E[x] = c / r: d/dc = 1 / r and d/dr = -c / r^2, per batch element.
    c0, r0 = np.array([0.3, 2.0, 15.0]), np.array([2.0, 0.5, 1.5])
    c = vt.from_numpy(np.tile(c0, (N, 1))).requires_grad_()
    r = vt.from_numpy(np.tile(r0, (N, 1))).requires_grad_()
    vt.manual_seed(5)
    Gamma(c, r).rsample().sum().backward()
    for grad, expected in [(c.grad.numpy(), 1 / r0), (r.grad.numpy(), -c0 / r0 ** 2)]:
        mean, se = _mean_and_se(grad)
        assert (np.abs(mean - expected) < 5 * se + 1e-12).all(), (mean, expected, se)


def test_dirichlet_and_beta_rsample_gradients_are_unbiased():
    c0 = np.array([0.6, 2.0, 5.0])
    c = vt.from_numpy(np.tile(c0, (N, 1))).requires_grad_()
    w = np.array([1.0, -0.5, 2.0])
    vt.manual_seed(6)
    x = Dirichlet(c).rsample()
    assert x.requires_grad and tuple(x.shape) == (N, 3)
    np.testing.assert_allclose(x.detach().numpy().sum(-1), 1.0, rtol=1e-12)
    (x * vt.from_numpy(w)).sum().backward()
    # d/dc_j of w . c / sum(c) = (w_j - w . mean) / sum(c)
    expected = (w - (w * c0).sum() / c0.sum()) / c0.sum()
    mean, se = _mean_and_se(c.grad.numpy())
    assert (np.abs(mean - expected) < 5 * se).all(), (mean, expected, se)
    a = vt.full((N,), 0.7, dtype=vt.float64, requires_grad=True)
    b = vt.full((N,), 2.5, dtype=vt.float64, requires_grad=True)
    vt.manual_seed(7)
    s = Beta(a, b).rsample()
    assert ((s.detach().numpy() > 0) & (s.detach().numpy() < 1)).all()
    s.sum().backward()
    # E[x] = a / (a + b): d/da = b / (a + b)^2, d/db = -a / (a + b)^2
    for grad, expected in [(a.grad.numpy(), 2.5 / 3.2 ** 2), (b.grad.numpy(), -0.7 / 3.2 ** 2)]:
        mean, se = _mean_and_se(grad)
        assert abs(mean - expected) < 5 * se, (mean, expected, se)


def test_sample_has_no_graph():
    c = vt.tensor([1.5, 2.0], requires_grad=True)
    for d in (Gamma(c, 1.0), Dirichlet(c), Beta(c, c)):
        assert not d.sample((3,)).requires_grad
        assert d.rsample((3,)).requires_grad
