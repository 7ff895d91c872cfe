"""vt.distributions.MixtureSameFamily against torch.distributions.MixtureSameFamily: log_prob and its gradients
(float64) for scalar and vector (Independent) components, batched and broadcast mixtures, mean, variance, cdf,
sampling (shapes, the chosen components' frequencies, draws from the components), expand, no rsample, repr,
support and the constructor's errors."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.distributions.mixture_same_family import MixtureSameFamily

TD, VD = torch.distributions, vt.distributions


def make(lib, logits, loc, scale, independent):
    D = TD if lib is torch else VD
    mix_cls = torch.distributions.MixtureSameFamily if lib is torch else MixtureSameFamily
    t = (lambda a: torch.from_numpy(a).requires_grad_()) if lib is torch else (
        lambda a: vt.from_numpy(a).requires_grad_())
    params = [t(logits), t(loc), t(scale)]
    comp = D.Normal(params[1], params[2])
    if independent:
        comp = D.Independent(comp, 1)
    return mix_cls(D.Categorical(logits=params[0]), comp), params


CASES = {  # (mixture logits shape, component loc shape, Independent components)
    "scalar": ((3,), (3,), False),
    "vector": ((4,), (4, 2), True),
    "batched": ((2, 3), (2, 3, 5), True),
    "scalar-batched": ((2, 3), (2, 3), False),
    "broadcast-mixture": ((1, 3), (4, 3, 2), True),
}


def arrays(case, seed=0):
    shape_l, shape_c, ind = CASES[case]
    r = np.random.default_rng(seed)
    return r.standard_normal(shape_l), r.standard_normal(shape_c), np.exp(0.3 * r.standard_normal(shape_c)), ind


@pytest.mark.parametrize("case", list(CASES))
def test_log_prob_moments_and_gradients_match_torch(case):
    logits, loc, scale, ind = arrays(case)
    tm, tp = make(torch, logits, loc, scale, ind)
    vm, vp = make(vt, logits, loc, scale, ind)
    assert tuple(vm.batch_shape) == tuple(tm.batch_shape) and tuple(vm.event_shape) == tuple(tm.event_shape)
    x = np.random.default_rng(1).standard_normal((6,) + tuple(tm.batch_shape) + tuple(tm.event_shape)) * 2
    tl, vl = tm.log_prob(torch.from_numpy(x)), vm.log_prob(vt.from_numpy(x))
    np.testing.assert_allclose(vl.detach().numpy(), tl.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vm.mean.detach().numpy(), tm.mean.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vm.variance.detach().numpy(), tm.variance.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(vm.stddev.detach().numpy(), tm.stddev.detach().numpy(), rtol=1e-10)
    w = np.random.default_rng(2).standard_normal(tuple(tl.shape))
    tgrads = torch.autograd.grad((tl * torch.from_numpy(w)).sum() + tm.mean.sum() + tm.variance.sum(), tp)
    vgrads = vt.autograd.grad((vl * vt.from_numpy(w)).sum() + vm.mean.sum() + vm.variance.sum(), vp)
    for name, g, h in zip(("logits", "loc", "scale"), vgrads, tgrads):
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_cdf_of_scalar_components_matches_torch():
    logits, loc, scale, _ = arrays("scalar-batched", seed=3)
    tm, tp = make(torch, logits, loc, scale, False)
    vm, vp = make(vt, logits, loc, scale, False)
    x = np.linspace(-3, 3, 14).reshape(7, 2)
    tc, vc = tm.cdf(torch.from_numpy(x)), vm.cdf(vt.from_numpy(x))
    np.testing.assert_allclose(vc.detach().numpy(), tc.detach().numpy(), rtol=1e-10, atol=1e-12)
    tg = torch.autograd.grad(tc.sum(), tp)
    vg = vt.autograd.grad(vc.sum(), vp)
    for g, h in zip(vg, tg):
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", ["scalar", "batched", "broadcast-mixture"])
def test_sampling_picks_components_by_their_weights(case):
    logits, loc, _, ind = arrays(case, seed=4)
    axis = loc.ndim - 1 - int(ind)  # the components' dim
    shape = [1] * loc.ndim
    shape[axis] = loc.shape[axis]
    loc = np.broadcast_to(10.0 * np.arange(loc.shape[axis]).reshape(shape), loc.shape).copy()
    scale = np.full(loc.shape, 1e-3)
    vm, _ = make(vt, logits, loc, scale, ind)
    tm, _ = make(torch, logits, loc, scale, ind)
    vt.manual_seed(0)
    s = vm.sample((4000,))
    assert tuple(s.shape) == (4000,) + tuple(tm.batch_shape) + tuple(tm.event_shape) and not s.requires_grad
    if case != "broadcast-mixture":  # torch draws [4000, 1, 2] there, against its own batch_shape (4,)
        assert tuple(s.shape) == tuple(tm.sample((4000,)).shape)
    # every draw sits on one component (their locations are 0, 10, 20, ...), with the mixture's frequencies
    k = np.rint(s.numpy() / 10.0)
    assert np.abs(s.numpy() - 10.0 * k).max() < 0.01
    if ind:
        assert (k == k[..., :1]).all()  # one component per draw, for the whole event
        k = k[..., 0]
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    freq = np.stack([(k == c).mean(0) for c in range(probs.shape[-1])], -1)
    np.testing.assert_allclose(freq, np.broadcast_to(probs, freq.shape), atol=0.04)
    assert tuple(vm.sample().shape) == tuple(tm.batch_shape) + tuple(tm.event_shape)
    assert vm.support.check(s).all().item() and tuple(vm.support.check(s).shape) == (4000,) + tuple(tm.batch_shape)


def test_expand_rsample_repr_support_and_errors():
    logits, loc, scale, _ = arrays("vector")
    vm, _ = make(vt, logits, loc, scale, True)
    tm, _ = make(torch, logits, loc, scale, True)
    ve, te = vm.expand((3,)), tm.expand((3,))
    assert tuple(ve.batch_shape) == (3,) and tuple(ve.event_shape) == (2,)
    x = np.random.default_rng(5).standard_normal((3, 2))
    np.testing.assert_allclose(ve.log_prob(vt.from_numpy(x)).detach().numpy(),
                               te.log_prob(torch.from_numpy(x)).detach().numpy(), rtol=1e-10)
    assert not vm.has_rsample
    with pytest.raises(NotImplementedError):
        vm.rsample()
    assert repr(vm).replace("Size(", "torch.Size(") == repr(tm)
    assert repr(vm.support) == repr(tm.support)
    # the support's check puts the component dim back: a half-positive value is outside a Gamma mixture's
    tg = torch.distributions.MixtureSameFamily(TD.Categorical(logits=torch.zeros(2)), TD.Gamma(torch.ones(2), 1.0))
    vg = MixtureSameFamily(VD.Categorical(logits=vt.zeros(2)), VD.Gamma(vt.ones(2), 1.0))
    vals = np.array([[0.5, -1.0, 2.0], [1.0, 3.0, 0.0]])
    assert vg.support.check(vt.from_numpy(vals)).tolist() == tg.support.check(torch.from_numpy(vals)).tolist()
    assert vm.mixture_distribution.logits.shape[-1] == 4 and vm.component_distribution.event_shape == (2,)
    # errors, with torch's exception types
    for lib, cls, D in ((torch, torch.distributions.MixtureSameFamily, TD), (vt, MixtureSameFamily, VD)):
        with pytest.raises(ValueError, match="Categorical"):
            cls(D.Normal(lib.zeros(3), lib.ones(3)), D.Normal(lib.zeros(3), lib.ones(3)))
        with pytest.raises(ValueError, match="Distribution"):
            cls(D.Categorical(logits=lib.zeros(3)), lib.zeros(3))
        with pytest.raises(ValueError, match="does not equal"):
            cls(D.Categorical(logits=lib.zeros(4)), D.Normal(lib.zeros(3), lib.ones(3)))
        with pytest.raises(ValueError, match="not compatible"):
            cls(D.Categorical(logits=lib.zeros(2, 3)), D.Normal(lib.zeros(5, 3), lib.ones(5, 3)))
        m = cls(D.Categorical(logits=lib.zeros(3)), D.Independent(D.Normal(lib.zeros(3, 2), lib.ones(3, 2)), 1))
        with pytest.raises(ValueError):  # validate_args: the value must have the event shape
            m.log_prob(lib.zeros(3))
