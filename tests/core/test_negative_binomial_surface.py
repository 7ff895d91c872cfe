"""vt.distributions.NegativeBinomial against torch.distributions.NegativeBinomial: log_prob and its gradients in
total_count, probs and logits (broadcast, real total_count, the total_count = value = 0 corner), moments, expand,
the validation errors, the half-open probs constraint, and sampling (moments of many draws, since the two
libraries' random streams differ)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.distributions import constraints as vt_constraints
from vibetensor.torch.distributions.negative_binomial import NegativeBinomial as VtNB

R = np.random.default_rng(0)
COUNT = R.uniform(0.3, 6.0, size=(3, 4))
PROBS = R.uniform(0.05, 0.95, size=(3, 4))
VALUE = R.integers(0, 9, size=(3, 4)).astype(np.float64)


def _nb(lib, param):
    cls = torch.distributions.NegativeBinomial if lib is torch else VtNB
    n = lib.from_numpy(COUNT.copy()).requires_grad_()
    p = lib.from_numpy(PROBS.copy() if param == "probs" else np.log(PROBS / (1 - PROBS))).requires_grad_()
    return cls(n, **{param: p}), n, p


@pytest.mark.parametrize("param", ["probs", "logits"])
def test_log_prob_and_gradients_match_torch(param):
    out = {}
    for lib in (torch, vt):
        d, n, p = _nb(lib, param)
        lp = d.log_prob(lib.from_numpy(VALUE.copy()))
        lp.sum().backward()
        out[lib] = [lp.detach().numpy(), n.grad.numpy(), p.grad.numpy(), d.mean.detach().numpy(),
                    d.variance.detach().numpy(), d.mode.detach().numpy(), d.probs.detach().numpy(),
                    d.logits.detach().numpy()]
    for v, t in zip(out[vt], out[torch]):
        np.testing.assert_allclose(v, t, rtol=1e-12, atol=1e-12)


def test_scalar_count_broadcasts_and_the_zero_corner():
    for lib, cls in ((torch, torch.distributions.NegativeBinomial), (vt, VtNB)):
        d = cls(2.5, logits=lib.tensor([[0.3, -1.0]], dtype=lib.float64))
        assert tuple(d.batch_shape) == (1, 2) and tuple(d.total_count.shape) == (1, 2)
        assert d.total_count.dtype == lib.float64
        z = cls(lib.tensor([0.0, 2.0]), logits=lib.tensor([0.3, 0.1]))
        lp = z.log_prob(lib.tensor([0.0, 0.0])).tolist()
        assert lp[0] == 0.0 and lp[1] == pytest.approx(2 * float(torch.nn.functional.logsigmoid(torch.tensor(-0.1))))


def test_expand_matches_torch():
    shapes = {}
    for lib, cls in ((torch, torch.distributions.NegativeBinomial), (vt, VtNB)):
        d = cls(lib.tensor([1.5, 3.0]), probs=lib.tensor([0.2, 0.7])).expand((4, 2))
        shapes[lib] = (tuple(d.batch_shape), d.log_prob(lib.ones(4, 2)).tolist(), tuple(d.param_shape))
    assert shapes[vt][0] == shapes[torch][0] and shapes[vt][2] == shapes[torch][2]
    np.testing.assert_allclose(shapes[vt][1], shapes[torch][1], rtol=1e-6)


def test_errors_match_torch():
    for lib, cls in ((torch, torch.distributions.NegativeBinomial), (vt, VtNB)):
        with pytest.raises(ValueError, match="Either `probs` or `logits`"):
            cls(2.0, probs=lib.tensor([0.5]), logits=lib.tensor([0.0]))
        with pytest.raises(ValueError, match="HalfOpenInterval"):
            cls(2.0, probs=lib.tensor([1.0]), validate_args=True)
        with pytest.raises(ValueError, match="GreaterThanEq"):
            cls(lib.tensor([-1.0]), probs=lib.tensor([0.5]), validate_args=True)
        with pytest.raises(ValueError, match="support"):
            cls(2.0, probs=lib.tensor([0.5]), validate_args=True).log_prob(lib.tensor([-1.0]))
        with pytest.raises(NotImplementedError):
            cls(2.0, probs=lib.tensor([0.5])).entropy()


def test_half_open_interval_constraint():
    c = vt_constraints.half_open_interval(0.0, 1.0)
    assert repr(c) == repr(torch.distributions.constraints.half_open_interval(0.0, 1.0))
    assert c.check(vt.tensor([0.0, 0.5, 1.0])).tolist() == [True, True, False]


def test_samples_have_the_distributions_moments():
    vt.manual_seed(0)
    d = VtNB(vt.tensor([2.0, 7.5], dtype=vt.float64), probs=vt.tensor([0.3, 0.6], dtype=vt.float64))
    draws = d.sample((40000,))
    assert tuple(draws.shape) == (40000, 2) and draws.dtype == vt.float64 and not draws.requires_grad
    x = draws.numpy()
    assert (x >= 0).all() and (x == np.round(x)).all()
    mean, var = d.mean.numpy(), d.variance.numpy()  # [0.857, 11.25], [1.22, 28.1]
    np.testing.assert_allclose(x.mean(0), mean, rtol=0.03)
    np.testing.assert_allclose(x.var(0), var, rtol=0.06)
