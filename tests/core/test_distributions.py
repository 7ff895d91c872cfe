"""Differential tests of vt.distributions (Normal, Bernoulli, Categorical, Uniform, kl_divergence) against
torch.distributions: log_prob, entropy, moments, cdf/icdf and KL values plus their gradients w.r.t. the parameters
(float32/float64, broadcast and batch shapes); sampling is checked statistically (shapes, support, moments with a
fixed vt.manual_seed) since the random streams differ from torch's; and the argument/sample validation errors."""
import math
import os
import sys

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autograd"))
from dist_helpers import close as _close, pair  # noqa: E402

D = vt.distributions
TD = torch.distributions
RNG = np.random.default_rng(0)
DTYPES = ["float32", "float64"]


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)


def close(v, t, dtype="float64"):
    _close(v, t, **tol(dtype))


def check_grads(out_v, out_t, leaves_v, leaves_t, dtype):
    """Backpropagate the same random cotangent through both outputs and compare the leaf gradients."""
    w = RNG.standard_normal(tuple(out_t.shape)).astype(dtype)
    (out_v * vt.from_numpy(w.copy())).sum().backward()
    (out_t * torch.from_numpy(w.copy())).sum().backward()
    for lv, lt in zip(leaves_v, leaves_t):
        assert lv.grad is not None
        close(lv.grad, lt.grad, dtype)


def _from_probs_or_logits(name, shape, dtype, use_logits, probs_range):
    """vt's and torch's ``name`` distribution built from the same random logits or probs (drawn in probs_range),
    and the two parameter leaves."""
    if use_logits:
        p_v, p_t = pair(RNG.standard_normal(shape).astype(dtype) * 2, grad=True)
        return getattr(D, name)(logits=p_v), getattr(TD, name)(logits=p_t), p_v, p_t
    p_v, p_t = pair(RNG.uniform(*probs_range, shape).astype(dtype), grad=True)
    return getattr(D, name)(probs=p_v), getattr(TD, name)(probs=p_t), p_v, p_t


SHAPES = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((4, 1), (1, 5))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ls,ss", SHAPES)
def test_normal_values_and_grads(dtype, ls, ss):
    loc_v, loc_t = pair(RNG.standard_normal(ls).astype(dtype), grad=True)
    sc_v, sc_t = pair(RNG.uniform(0.5, 2.0, ss).astype(dtype), grad=True)
    dv, dt = D.Normal(loc_v, sc_v), TD.Normal(loc_t, sc_t)
    assert tuple(dv.batch_shape) == tuple(dt.batch_shape) and dv.event_shape == ()
    x_v, x_t = pair(RNG.standard_normal(tuple(dt.batch_shape)).astype(dtype))
    for name in ["mean", "stddev", "variance", "mode"]:
        close(getattr(dv, name), getattr(dt, name), dtype)
    close(dv.cdf(x_v), dt.cdf(x_t), dtype)
    u_v, u_t = pair(RNG.uniform(0.05, 0.95, tuple(dt.batch_shape)).astype(dtype))
    np.testing.assert_allclose(dv.icdf(u_v).detach().numpy(), dt.icdf(u_t).detach().numpy(), rtol=1e-4, atol=1e-4)
    out_v = dv.log_prob(x_v) + dv.entropy() * 0.5 + dv.variance
    out_t = dt.log_prob(x_t) + dt.entropy() * 0.5 + dt.variance
    close(out_v, out_t, dtype)
    assert out_v.dtype == getattr(vt, dtype)
    check_grads(out_v, out_t, [loc_v, sc_v], [loc_t, sc_t], dtype)


def test_normal_python_floats_and_mixed():
    dv, dt = D.Normal(0.5, 2.0), TD.Normal(0.5, 2.0)
    assert dv.batch_shape == () and dv.loc.dtype == vt.float32
    close(dv.log_prob(vt.tensor([0.1, -3.0])), dt.log_prob(torch.tensor([0.1, -3.0])), "float32")
    close(dv.entropy(), dt.entropy(), "float32")
    # A float next to a float64 tensor takes the tensor's dtype.
    dv = D.Normal(vt.tensor([0.0, 1.0], dtype=vt.float64), 3.0)
    assert dv.scale.dtype == vt.float64 and dv.batch_shape == (2,)
    # log_prob broadcasts the value against the batch (extra leading sample dims).
    x = RNG.standard_normal((5, 2))
    close(dv.log_prob(vt.from_numpy(x.copy())),
          TD.Normal(torch.tensor([0.0, 1.0], dtype=torch.float64), 3.0).log_prob(torch.from_numpy(x.copy())))


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_sampling_statistics(dtype):
    vt.manual_seed(1234)
    d = D.Normal(vt.tensor([-1.0, 2.0], dtype=getattr(vt, dtype)), vt.tensor([0.5, 3.0], dtype=getattr(vt, dtype)))
    s = d.sample((100000,))
    assert tuple(s.shape) == (100000, 2) and s.dtype == getattr(vt, dtype) and not s.requires_grad
    a = s.numpy()
    np.testing.assert_allclose(a.mean(0), [-1.0, 2.0], atol=0.03)
    np.testing.assert_allclose(a.var(0), [0.25, 9.0], rtol=0.03)
    assert tuple(d.sample().shape) == (2,) and tuple(d.rsample((3, 4)).shape) == (3, 4, 2)
    vt.manual_seed(7)
    a1 = d.sample((5,)).numpy()
    vt.manual_seed(7)
    np.testing.assert_array_equal(a1, d.sample((5,)).numpy())


def test_normal_rsample_gradient():
    loc = vt.tensor([0.0, 1.0, -2.0], requires_grad=True)
    scale = vt.tensor([1.0, 2.0, 0.5], requires_grad=True)
    d = D.Normal(loc, scale)
    assert d.has_rsample
    vt.manual_seed(0)
    s = d.rsample((4,))
    assert s.requires_grad
    s.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), [4.0, 4.0, 4.0])
    # d sample / d scale is the standard-normal noise eps = (s - loc) / scale.
    eps = ((s.detach() - loc.detach()) / scale.detach()).numpy()
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
@pytest.mark.parametrize("use_logits", [False, True])
def test_bernoulli_values_and_grads(dtype, shape, use_logits):
    dv, dt, p_v, p_t = _from_probs_or_logits("Bernoulli", shape, dtype, use_logits, (0.05, 0.95))
    assert tuple(dv.batch_shape) == tuple(dt.batch_shape)
    x_v, x_t = pair(RNG.integers(0, 2, (3,) + shape).astype(dtype))
    for name in ["mean", "variance", "stddev", "probs", "logits"]:
        close(getattr(dv, name), getattr(dt, name), dtype)
    out_v = dv.log_prob(x_v).sum(0) + dv.entropy() + dv.variance
    out_t = dt.log_prob(x_t).sum(0) + dt.entropy() + dt.variance
    close(out_v, out_t, dtype)
    check_grads(out_v, out_t, [p_v], [p_t], dtype)
    close(dv.enumerate_support(), dt.enumerate_support(), dtype)


def test_bernoulli_scalar_sampling_and_errors():
    dv = D.Bernoulli(0.3)
    assert dv.batch_shape == ()
    close(dv.log_prob(vt.tensor([1.0, 0.0])), TD.Bernoulli(0.3).log_prob(torch.tensor([1.0, 0.0])), "float32")
    vt.manual_seed(3)
    s = D.Bernoulli(vt.tensor([0.1, 0.5, 0.9])).sample((100000,))
    assert tuple(s.shape) == (100000, 3)
    a = s.numpy()
    assert set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_allclose(a.mean(0), [0.1, 0.5, 0.9], atol=0.01)
    msg = "Either `probs` or `logits` must be specified, but not both."
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Bernoulli()
    with pytest.raises(ValueError) as e:
        D.Bernoulli(probs=0.5, logits=0.0)
    assert str(e.value) == msg
    with pytest.raises(ValueError, match="Interval"):
        D.Bernoulli(vt.tensor([1.5]))
    with pytest.raises(ValueError, match="within the support"):
        D.Bernoulli(vt.tensor([0.5])).log_prob(vt.tensor([0.5]))
    D.Bernoulli(vt.tensor([1.5]), validate_args=False)  # no check when turned off


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 2, 3)])
@pytest.mark.parametrize("use_logits", [False, True])
def test_categorical_values_and_grads(dtype, shape, use_logits):
    # probs up to 2: unnormalised on purpose
    dv, dt, p_v, p_t = _from_probs_or_logits("Categorical", shape, dtype, use_logits, (0.1, 2.0))
    assert tuple(dv.batch_shape) == tuple(dt.batch_shape) and dv.event_shape == ()
    x = RNG.integers(0, shape[-1], (6,) + shape[:-1])
    x_v, x_t = vt.from_numpy(x.copy()), torch.from_numpy(x.copy())
    close(dv.probs, dt.probs, dtype)
    close(dv.logits, dt.logits, dtype)
    assert np.isnan(dv.mean.numpy()).all() and tuple(dv.variance.shape) == tuple(dt.variance.shape)
    np.testing.assert_array_equal(dv.mode.numpy(), dt.mode.numpy())
    out_v = dv.log_prob(x_v).sum(0) + dv.entropy()
    out_t = dt.log_prob(x_t).sum(0) + dt.entropy()
    close(out_v, out_t, dtype)
    check_grads(out_v, out_t, [p_v], [p_t], dtype)
    np.testing.assert_array_equal(dv.enumerate_support().numpy(), dt.enumerate_support().numpy())


def test_categorical_zero_prob_entropy_and_sampling():
    p = [[0.0, 0.25, 0.75], [0.5, 0.5, 0.0]]
    close(D.Categorical(vt.tensor(p)).entropy(), TD.Categorical(torch.tensor(p)).entropy(), "float32")
    vt.manual_seed(5)
    d = D.Categorical(vt.tensor([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]))
    s = d.sample((100000,))
    assert tuple(s.shape) == (100000, 2) and s.dtype == vt.int64
    a = s.numpy()
    assert a.min() >= 0 and a.max() <= 2
    for b, probs in enumerate([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]):
        np.testing.assert_allclose(np.bincount(a[:, b], minlength=3) / a.shape[0], probs, atol=0.01)
    assert tuple(d.sample().shape) == (2,) and tuple(d.sample((2, 3)).shape) == (2, 3, 2)
    assert tuple(D.Categorical(logits=vt.zeros(4)).sample((7,)).shape) == (7,)


def test_categorical_errors():
    with pytest.raises(ValueError, match="must be at least one-dimensional"):
        D.Categorical(vt.tensor(0.5))
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Categorical(vt.tensor([0.5, 0.5]), vt.tensor([0.0, 0.0]))
    with pytest.raises(ValueError, match="Simplex"):
        D.Categorical(vt.tensor([-0.5, 1.0]))
    with pytest.raises(ValueError, match="within the support"):
        D.Categorical(vt.tensor([0.5, 0.5])).log_prob(vt.tensor([2]))
    with pytest.raises(ValueError, match="broadcastable"):
        D.Categorical(vt.ones(3, 2)).log_prob(vt.tensor([0, 1]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ls,hs", [((), ()), ((3,), (3,)), ((2, 1), (3,))])
def test_uniform_values_and_grads(dtype, ls, hs):
    lo = RNG.uniform(-2, 0, ls).astype(dtype)
    hi = RNG.uniform(1, 3, hs).astype(dtype)
    lo_v, lo_t = pair(lo, grad=True)
    hi_v, hi_t = pair(hi, grad=True)
    dv, dt = D.Uniform(lo_v, hi_v), TD.Uniform(lo_t, hi_t)
    assert tuple(dv.batch_shape) == tuple(dt.batch_shape)
    x_v, x_t = pair(RNG.uniform(0, 1, tuple(dt.batch_shape)).astype(dtype))
    for name in ["mean", "stddev", "variance"]:
        close(getattr(dv, name), getattr(dt, name), dtype)
    close(dv.cdf(x_v), dt.cdf(x_t), dtype)
    close(dv.icdf(x_v), dt.icdf(x_t), dtype)
    out_v = dv.log_prob(x_v) + dv.entropy() + dv.stddev
    out_t = dt.log_prob(x_t) + dt.entropy() + dt.stddev
    close(out_v, out_t, dtype)
    check_grads(out_v, out_t, [lo_v, hi_v], [lo_t, hi_t], dtype)


def test_uniform_sampling_and_support():
    vt.manual_seed(11)
    low = vt.tensor([0.0, -3.0], requires_grad=True)
    high = vt.tensor([1.0, 5.0], requires_grad=True)
    d = D.Uniform(low, high)
    s = d.sample((100000,))
    a = s.numpy()
    assert tuple(s.shape) == (100000, 2) and (a >= [0.0, -3.0]).all() and (a < [1.0, 5.0]).all()
    np.testing.assert_allclose(a.mean(0), [0.5, 1.0], atol=0.03)
    np.testing.assert_allclose(a.var(0), [1 / 12, 64 / 12], rtol=0.03)
    r = d.rsample((10,))
    r.sum().backward()
    u = ((r.detach() - low.detach()) / (high.detach() - low.detach())).numpy()
    np.testing.assert_allclose(high.grad.numpy(), u.sum(0), rtol=1e-5)
    np.testing.assert_allclose(low.grad.numpy(), (1 - u).sum(0), rtol=1e-5)
    with pytest.raises(ValueError, match="within the support"):
        d.log_prob(vt.tensor([0.5, 6.0]))
    lp = D.Uniform(0.0, 1.0, validate_args=False).log_prob(vt.tensor([-1.0, 0.5, 2.0])).numpy()
    assert lp[0] == -math.inf and lp[1] == 0.0 and lp[2] == -math.inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_normal_normal(dtype):
    vals = [RNG.standard_normal((2, 3)), RNG.uniform(0.3, 2, (3,)), RNG.standard_normal((1, 3)),
            RNG.uniform(0.3, 2, (2, 1))]
    pv, pt = zip(*[pair(a.astype(dtype), grad=True) for a in vals])
    kv = D.kl_divergence(D.Normal(pv[0], pv[1]), D.Normal(pv[2], pv[3]))
    kt = TD.kl_divergence(TD.Normal(pt[0], pt[1]), TD.Normal(pt[2], pt[3]))
    close(kv, kt, dtype)
    check_grads(kv, kt, pv, pt, dtype)
    close(D.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 2.0)),
          TD.kl_divergence(TD.Normal(0.0, 1.0), TD.Normal(1.0, 2.0)), "float32")


def test_kl_other_pairs():
    p = [[0.0, 0.3, 0.7], [0.2, 0.3, 0.5]]
    q = [[0.1, 0.1, 0.8], [0.0, 0.5, 0.5]]
    close(D.kl_divergence(D.Categorical(vt.tensor(p)), D.Categorical(vt.tensor(q))),
          TD.kl_divergence(TD.Categorical(torch.tensor(p)), TD.Categorical(torch.tensor(q))), "float32")
    lv, lt = pair(RNG.standard_normal((4,)), grad=True)
    kv = D.kl_divergence(D.Bernoulli(logits=lv), D.Bernoulli(vt.tensor([0.2, 0.5, 0.9, 0.4], dtype=vt.float64)))
    kt = TD.kl_divergence(TD.Bernoulli(logits=lt), TD.Bernoulli(torch.tensor([0.2, 0.5, 0.9, 0.4],
                                                                             dtype=torch.float64)))
    close(kv, kt)
    check_grads(kv, kt, [lv], [lt], "float64")
    b = [0.0, 1.0, 0.3]
    close(D.kl_divergence(D.Bernoulli(vt.tensor(b)), D.Bernoulli(vt.tensor([0.5, 1.0, 0.0]))),
          TD.kl_divergence(TD.Bernoulli(torch.tensor(b)), TD.Bernoulli(torch.tensor([0.5, 1.0, 0.0]))), "float32")
    close(D.kl_divergence(D.Uniform(vt.tensor([0.0, -1.0]), 1.0), D.Uniform(vt.tensor([-1.0, 0.0]), 2.0)),
          TD.kl_divergence(TD.Uniform(torch.tensor([0.0, -1.0]), 1.0), TD.Uniform(torch.tensor([-1.0, 0.0]), 2.0)),
          "float32")


def test_kl_not_implemented_message():
    with pytest.raises(NotImplementedError) as e:
        D.kl_divergence(D.Categorical(vt.ones(2)), D.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError) as et:
        TD.kl_divergence(TD.Categorical(torch.ones(2)), TD.Normal(0.0, 1.0))
    assert str(e.value) == str(et.value)

    class MyNormal(D.Normal):
        pass
    # Subclasses dispatch to the registered parent pair, as in torch.
    close(D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)), torch.tensor(0.5), "float32")


def test_validation_messages_and_base():
    with pytest.raises(ValueError, match=r"Expected parameter scale .* GreaterThan\(lower_bound=0.0\)"):
        D.Normal(vt.tensor([0.0]), vt.tensor([-1.0]))
    with pytest.raises(ValueError, match="The value argument to log_prob must be a Tensor"):
        D.Normal(0.0, 1.0).log_prob(0.5)
    with pytest.raises(ValueError, match="within the support"):
        D.Normal(0.0, 1.0).log_prob(vt.tensor([float("nan")]))
    assert not D.Bernoulli(0.5).has_rsample and not D.Categorical(vt.ones(2)).has_rsample
    assert D.Normal(0.0, 1.0).has_rsample and D.Uniform(0.0, 1.0).has_rsample
    with pytest.raises(NotImplementedError):
        D.Categorical(vt.ones(2)).rsample()
    assert isinstance(D.Normal(0.0, 1.0), D.Distribution)
    assert repr(D.Normal(vt.zeros(3), 1.0)).startswith("Normal(loc:")


@pytest.mark.cuda
def test_parameters_on_cuda_sample_there():
    # Samples, Python-number parameters and NaN moments live on the parameters' device.
    loc = vt.zeros(3).cuda()
    for d in (vt.distributions.Normal(loc, 1.0), vt.distributions.Uniform(loc, 2.0),
              vt.distributions.Categorical(logits=vt.zeros(2, 3).cuda()),
              vt.distributions.Bernoulli(probs=vt.full((3,), 0.5).cuda())):
        s = d.sample((4,))
        assert s.is_cuda and d.log_prob(s).is_cuda
        if hasattr(d, "_num_events") or isinstance(d, vt.distributions.Bernoulli):
            assert d.enumerate_support().is_cuda
