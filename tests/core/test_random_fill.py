"""Tensor.bernoulli_/exponential_/geometric_/cauchy_/log_normal_: each fills with torch's distribution (sample
moments or quantiles of 200,000 draws against the distribution's, torch's draws beside them), keeps the tensor's
dtype and identity, repeats under one generator seed, and raises torch's errors."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

N = 200_000


def _draw(name, *args, dtype="float64"):
    vt.manual_seed(3)
    torch.manual_seed(3)
    v, t = vt.empty(N, dtype=getattr(vt, dtype)), torch.empty(N, dtype=getattr(torch, dtype))
    got = getattr(v, name)(*args)
    assert got is v
    getattr(t, name)(*args)
    return v.double().numpy(), t.double().numpy()


@pytest.mark.parametrize("lambd", [0.5, 2.0])
def test_exponential(lambd):
    v, t = _draw("exponential_", lambd)
    assert v.min() >= 0 and abs(v.mean() - 1 / lambd) < 0.02 / lambd and abs(v.std() - 1 / lambd) < 0.03 / lambd
    assert abs(np.median(v) - np.median(t)) < 0.02 / lambd


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_geometric(p, dtype):
    v, t = _draw("geometric_", p, dtype=dtype)
    assert v.min() >= 1 and np.all(v == np.round(v))
    assert abs(v.mean() - 1 / p) < 0.03 / p and abs(v.mean() - t.mean()) < 0.05 / p


def test_cauchy_and_log_normal():
    v, t = _draw("cauchy_", 1.0, 2.0)
    q = np.quantile(v, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(q, [1 - 2, 1, 1 + 2], atol=0.05)  # median +- sigma are the quartiles
    v, t = _draw("log_normal_", 0.5, 0.25, dtype="float32")
    assert v.min() > 0 and abs(np.log(v).mean() - 0.5) < 0.005 and abs(np.log(v).std() - 0.25) < 0.005
    assert abs(v.mean() - math.exp(0.5 + 0.25 ** 2 / 2)) < 0.01 and abs(v.mean() - t.mean()) < 0.01


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_bernoulli(dtype):
    v, _ = _draw("bernoulli_", 0.3, dtype=dtype)
    assert set(np.unique(v)) <= {0.0, 1.0} and abs(v.mean() - 0.3) < 0.005
    p = vt.tensor([0.0, 1.0, 0.5]).expand(N, 3)
    draws = vt.empty(N, 3).bernoulli_(p).numpy()
    assert draws[:, 0].max() == 0 and draws[:, 1].min() == 1 and abs(draws[:, 2].mean() - 0.5) < 0.005


def test_generator_repeats_and_leaf_check():
    g = vt.Generator().manual_seed(11)
    a = vt.empty(4, 5).exponential_(generator=g)
    g.manual_seed(11)
    b = vt.empty(5, 4).t().exponential_(generator=g)  # a strided view is filled in its logical element order
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), vt.empty(4, 5).exponential_(generator=g).numpy())
    leaf = vt.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf.exponential_()
    with vt.no_grad():
        leaf.exponential_()


@pytest.mark.parametrize("call", [
    lambda m: m.empty(3).exponential_(0), lambda m: m.empty(3).geometric_(1.5), lambda m: m.empty(3).geometric_(0),
    lambda m: m.empty(3).log_normal_(1, 0), lambda m: m.empty(3).cauchy_(0, 0), lambda m: m.empty(3).bernoulli_(1.5),
    lambda m: m.empty(3, dtype=m.int64).exponential_(), lambda m: m.empty(3, dtype=m.int64).cauchy_(),
    lambda m: m.empty(3, dtype=m.int64).log_normal_(),
])
def test_errors_as_torch(call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(type(theirs.value)) as ours:
        call(vt)
    assert str(ours.value) == str(theirs.value)
