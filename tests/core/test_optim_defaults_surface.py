"""SGD, Adam and AdamW against torch's: the same constructor parameters (differentiable, Adam's
decoupled_weight_decay) and defaults (what a script logs from optimizer.defaults or a param group, what a
checkpoint stores), and Adam(decoupled_weight_decay=True) stepping as torch's does, which is AdamW."""
import inspect

import numpy as np
import pytest
import torch
import vibetensor.torch as vt


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_signature_and_defaults_match_torch(name):
    tp, vp = torch.nn.Parameter(torch.ones(2)), vt.nn.Parameter(vt.ones(2))
    assert list(inspect.signature(getattr(vt.optim, name)).parameters) == \
        list(inspect.signature(getattr(torch.optim, name)).parameters)
    t, v = getattr(torch.optim, name)([tp]), getattr(vt.optim, name)([vp])
    assert sorted(v.defaults.items()) == sorted(t.defaults.items())
    assert [type(v.defaults[k]) for k in sorted(t.defaults)] == [type(t.defaults[k]) for k in sorted(t.defaults)]
    tg, vg = t.state_dict()["param_groups"], v.state_dict()["param_groups"]
    assert vg == tg


@pytest.mark.parametrize("name,kw", [("Adam", dict(decoupled_weight_decay=True)), ("Adam", {}), ("AdamW", {}),
                                     ("SGD", dict(momentum=0.9, differentiable=False))])
def test_steps_match_torch(name, kw):
    w0 = np.array([[0.5, -1.0], [2.0, 0.25]])
    tp, vp = torch.nn.Parameter(torch.from_numpy(w0.copy())), vt.nn.Parameter(vt.from_numpy(w0.copy()))
    t = getattr(torch.optim, name)([tp], lr=0.1, weight_decay=0.3, **kw)
    v = getattr(vt.optim, name)([vp], lr=0.1, weight_decay=0.3, **kw)
    for _ in range(3):
        for p, o in ((tp, t), (vp, v)):
            o.zero_grad()
            (p * p * p).sum().backward()
            o.step()
    np.testing.assert_allclose(vp.detach().numpy(), tp.detach().numpy(), rtol=1e-12)


def test_adam_decoupled_is_adamw_and_loads_torchs_checkpoint():
    w0 = np.array([1.0, -2.0])
    vp = vt.nn.Parameter(vt.from_numpy(w0.copy()))
    tp = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    t = torch.optim.Adam([tp], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True)
    (tp * tp).sum().backward()
    t.step()
    v = vt.optim.Adam([vp], lr=0.1, weight_decay=0.5)
    state = {k: vt.from_numpy(s.numpy().copy()) for k, s in t.state_dict()["state"][0].items()}
    v.load_state_dict({"state": {0: state}, "param_groups": t.state_dict()["param_groups"]})
    assert v.param_groups[0]["decoupled_weight_decay"] is True
    vp.data.copy_(vt.from_numpy(tp.detach().numpy().copy()))
    for p, o in ((tp, t), (vp, v)):
        o.zero_grad()
        (p * p).sum().backward()
        o.step()
    np.testing.assert_allclose(vp.detach().numpy(), tp.detach().numpy(), rtol=1e-12)
