"""vt.poisson: mean and variance, chi-square goodness of fit against the exact Poisson pmf on both sides of the
inversion / PTRS switch (rate 10), rate 0, mixed rates in one tensor, dtypes, reproducibility with a seeded
vt.Generator, and torch's errors."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

import vibetensor.torch as vt
from vibetensor.torch._poisson import poisson

N = 40000


def _samples(lam, n=N, seed=0, dtype=None):
    g = vt.Generator().manual_seed(seed)
    return poisson(vt.full((n,), lam, dtype=dtype or vt.float64), generator=g).numpy()


@pytest.mark.parametrize("lam", [0.05, 0.7, 4.0, 9.99, 10.0, 17.5, 60.0, 900.0])
def test_chi_square_against_pmf(lam):
    x = _samples(lam, seed=int(lam * 100))
    assert np.all(x == np.round(x)) and np.all(x >= 0)
    # bins: each k with expected count >= 20, tails lumped into the end bins
    lo, hi = int(stats.poisson.ppf(1e-3, lam)), int(stats.poisson.ppf(1 - 1e-3, lam))
    edges = list(range(lo, hi + 1))
    exp = np.array([stats.poisson.cdf(lo, lam)] + [stats.poisson.pmf(k, lam) for k in edges[1:-1]]
                   + [stats.poisson.sf(edges[-2], lam)]) if hi > lo + 1 else None
    if exp is None:  # tiny rates: 0 versus >= 1
        exp = np.array([stats.poisson.pmf(0, lam), stats.poisson.sf(0, lam)])
        obs = np.array([(x == 0).sum(), (x >= 1).sum()])
    else:
        obs = np.array([(x <= lo).sum()] + [(x == k).sum() for k in edges[1:-1]] + [(x >= edges[-1]).sum()])
    assert abs(exp.sum() - 1) < 1e-9
    chi2 = ((obs - N * exp) ** 2 / (N * exp)).sum()
    p = stats.chi2.sf(chi2, len(exp) - 1)
    assert p > 1e-4, (lam, chi2, p)


@pytest.mark.parametrize("lam", [0.3, 3.0, 12.0, 150.0, 1e5])
def test_mean_and_variance(lam):
    x = _samples(lam, seed=7)
    se = math.sqrt(lam / N)
    assert abs(x.mean() - lam) < 5 * se
    assert abs(x.var() / lam - 1) < 5 * math.sqrt(2 / N) + 0.01


def test_rate_zero_and_mixed_shape():
    rates = np.array([[0.0, 0.0, 2.0], [50.0, 0.0, 7.0]])
    rates = np.repeat(rates[None], 5000, 0)
    x = poisson(vt.from_numpy(rates)).numpy()
    assert x.shape == rates.shape
    assert np.all(x[rates == 0] == 0)
    for lam in (2.0, 50.0, 7.0):
        assert abs(x[rates == lam].mean() - lam) < 5 * math.sqrt(lam / (rates == lam).sum())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_and_reproducible(dtype):
    d = getattr(vt, dtype)
    rates = vt.from_numpy(np.linspace(0, 40, 101).astype(dtype))
    a = poisson(rates, generator=vt.Generator().manual_seed(3))
    b = poisson(rates, generator=vt.Generator().manual_seed(3))
    c = poisson(rates, generator=vt.Generator().manual_seed(4))
    assert a.dtype == d and tuple(a.shape) == (101,)
    assert np.array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    vt.manual_seed(11)
    e = poisson(rates)
    vt.manual_seed(11)
    f = poisson(rates)
    assert np.array_equal(e.numpy(), f.numpy())


def test_empty_and_grad_link():
    e = poisson(vt.empty(0, 3))
    assert tuple(e.shape) == tuple(torch.poisson(torch.empty(0, 3)).shape)
    r = vt.full((4,), 3.0).requires_grad_()
    s = poisson(r)
    assert s.requires_grad == torch.poisson(torch.full((4,), 3.0, requires_grad=True)).requires_grad
    s.sum().backward()
    assert np.all(r.grad.numpy() == 0)


def test_errors_match_torch():
    for bad in ([-1.0], [1.0, float("nan")]):
        with pytest.raises(RuntimeError, match="invalid Poisson rate"):
            torch.poisson(torch.tensor(bad))
        with pytest.raises(RuntimeError, match="invalid Poisson rate"):
            poisson(vt.from_numpy(np.array(bad)))
    with pytest.raises(NotImplementedError):
        torch.poisson(torch.tensor([1, 2]))
    with pytest.raises(NotImplementedError):
        poisson(vt.from_numpy(np.array([1, 2])))
