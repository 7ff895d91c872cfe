"""vt.distributions.OneHotCategoricalStraightThrough against torch's: rsample's value is a one-hot draw with the
distribution's frequencies, its gradient (float64) is that of the probabilities whatever was drawn, for probs and
logits parameterisations and batched shapes; log_prob, entropy, expand and the inherited behaviour match."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.distributions.one_hot_categorical import OneHotCategoricalStraightThrough as VST

TST = torch.distributions.OneHotCategoricalStraightThrough


@pytest.mark.parametrize("param", ["probs", "logits"])
@pytest.mark.parametrize("shape,sample_shape", [((4,), ()), ((2, 3), (5,)), ((3, 1, 5), (2, 2))])
def test_rsample_gradient_is_the_probabilities_gradient(param, shape, sample_shape):
    r = np.random.default_rng(0)
    raw = r.random(shape) + 0.1 if param == "probs" else r.standard_normal(shape)
    tp, vp = torch.from_numpy(raw).requires_grad_(), vt.from_numpy(raw).requires_grad_()
    td, vd = TST(**{param: tp}), VST(**{param: vp})
    assert vd.has_rsample and tuple(vd.batch_shape) == tuple(td.batch_shape)
    assert tuple(vd.event_shape) == tuple(td.event_shape)
    ts, vs = td.rsample(sample_shape), vd.rsample(sample_shape)
    assert tuple(vs.shape) == tuple(ts.shape) and vs.requires_grad
    hard = vs.detach().numpy()
    assert set(np.unique(hard).tolist()) <= {0.0, 1.0} and (hard.sum(-1) == 1).all()
    w = r.standard_normal(tuple(ts.shape))
    (tg,) = torch.autograd.grad((ts * torch.from_numpy(w)).sum(), tp)
    (vg,) = vt.autograd.grad((vs * vt.from_numpy(w)).sum(), vp)
    np.testing.assert_allclose(vg.numpy(), tg.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vd.log_prob(vs.detach()).detach().numpy(),
                               td.log_prob(torch.from_numpy(hard)).detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(vd.entropy().detach().numpy(), td.entropy().detach().numpy(), rtol=1e-10)


def test_draw_frequencies_expand_and_repr():
    probs = np.array([0.1, 0.6, 0.3])
    vt.manual_seed(0)
    d = VST(probs=vt.from_numpy(probs))
    draws = d.rsample((4000,)).detach().numpy()
    np.testing.assert_allclose(draws.mean(0), probs, atol=0.03)
    e, te = d.expand((2,)), TST(probs=torch.from_numpy(probs)).expand((2,))
    assert type(e) is VST and tuple(e.batch_shape) == tuple(te.batch_shape) == (2,)
    assert tuple(e.rsample().shape) == (2, 3)
    assert repr(d).replace("Size(", "torch.Size(") == repr(TST(probs=torch.from_numpy(probs)))
    with pytest.raises(ValueError):  # validation inherited from OneHotCategorical: not a one-hot value
        d.log_prob(vt.tensor([0.5, 0.5, 0.0], dtype=vt.float64))
    with pytest.raises(ValueError):
        TST(probs=torch.from_numpy(probs)).log_prob(torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
