"""A 1-element tensor learning rate in SGD / Adam / AdamW, against torch (training loops written for torch.compile
keep lr as a tensor and change it in place): the fused and per-parameter paths step as torch's do, an in-place
change of the tensor takes effect at the next step, and torch's constructor errors are raised."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

GRADS = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
CONFIGS = {
    "sgd_momentum": ("SGD", dict(momentum=0.9, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(momentum=0.9, nesterov=True)),
    "sgd_plain_per_parameter": ("SGD", dict(foreach=False)),
    "adam": ("Adam", dict(weight_decay=0.01)),
    "adam_per_parameter": ("Adam", dict(foreach=False)),
    "adam_amsgrad": ("Adam", dict(amsgrad=True)),
    "adamw_fused": ("AdamW", dict(fused=True)),
    "adamw_per_parameter": ("AdamW", dict(fused=False, weight_decay=0.1)),
}


def _run(lib, name, lr_change=None):
    cls, kw = CONFIGS[name]
    p = lib.nn.Parameter(lib.from_numpy(np.linspace(-1, 1, 3).astype(np.float32)))
    opt = getattr(lib.optim, cls)([p], lr=lib.tensor(0.05), **kw)
    out = []
    for i, g in enumerate(GRADS):
        if lr_change is not None and i == 2:
            opt.param_groups[0]["lr"].fill_(lr_change)  # in place: the optimizer reads it at the next step
        p.grad = lib.from_numpy(g.copy())
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out), opt


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("lr_change", [None, 0.005])
def test_tensor_lr_steps_as_torchs(name, lr_change):
    v, vopt = _run(vt, name, lr_change)
    t, _ = _run(torch, name, lr_change)
    np.testing.assert_allclose(v, t, rtol=1e-6, atol=1e-7)
    assert isinstance(vopt.param_groups[0]["lr"], vt.Tensor)  # kept as given, as torch keeps it


def test_the_in_place_change_matters():
    a, _ = _run(vt, "adam")
    b, _ = _run(vt, "adam", lr_change=0.005)
    np.testing.assert_array_equal(a[:2], b[:2])
    assert not np.allclose(a[2:], b[2:])


@pytest.mark.parametrize("lib", [torch, vt], ids=["torch", "vt"])
@pytest.mark.parametrize("cls, kw, message", [
    ("Adam", dict(foreach=True), "lr as a Tensor is not supported for capturable=False and foreach=True"),
    ("AdamW", dict(foreach=True), "lr as a Tensor is not supported for capturable=False and foreach=True"),
    ("Adam", dict(lr=[0.1, 0.2]), "Tensor lr must be 1-element"),
    ("SGD", dict(lr=[0.1, 0.2]), "Tensor lr must be 1-element"),
])
def test_torchs_constructor_errors(lib, cls, kw, message):
    kw = dict(kw)  # (the parameter dicts are shared between the two libraries' cases)
    lr = lib.tensor(kw.pop("lr", 0.1))
    with pytest.raises(ValueError, match=message):
        getattr(lib.optim, cls)([lib.nn.Parameter(lib.ones(2))], lr=lr, **kw)
