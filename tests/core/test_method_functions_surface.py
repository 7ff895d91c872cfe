"""torch's free-function forms of Tensor methods (torch.clamp_min, torch.clone, torch.unflatten, torch.sqrt_,
torch.zero_, ...) against torch: the same values, in-place forms returning and changing their input, the input
passed by keyword, and torch's TypeError for a first argument that is not a tensor."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch._method_functions import _INPLACE, FUNCTIONS

X = np.array([[0.2, 0.45, 0.7], [0.15, 0.35, 0.9]])
DOMAIN = {"acosh_": X + 1.5, "arccosh_": X + 1.5}  # acosh needs x >= 1


@pytest.mark.parametrize("name", _INPLACE)
def test_inplace_unary_forms(name):
    x = DOMAIN.get(name, X)
    t, v = torch.from_numpy(x.copy()), vt.from_numpy(x.copy())
    tr, vr = getattr(torch, name)(t), getattr(vt, name)(v)
    assert vr is v and tr is t
    np.testing.assert_allclose(v.numpy(), t.numpy(), rtol=1e-12, atol=1e-15)
    if name not in ("zero_", "abs_", "frac_"):  # the others change these values
        assert not np.allclose(v.numpy(), x)


def test_every_name_is_a_method_here_and_a_function_in_torch():
    for name in FUNCTIONS:
        assert hasattr(vt.Tensor, name) and callable(getattr(torch, name)), name
        assert getattr(vt, name) is FUNCTIONS[name] or not hasattr(torch.Tensor, name), name


def both(x):
    return torch.from_numpy(np.array(x)), vt.from_numpy(np.array(x))


CALLS = [
    ("clamp_min", lambda m, x: m.clamp_min(x, 0.3)),
    ("clamp_max", lambda m, x: m.clamp_max(x, m.tensor([0.3, 0.5, 0.8], dtype=m.float64))),
    ("clamp_min_", lambda m, x: m.clamp_min_(x, 0.3)),
    ("clamp_max_", lambda m, x: m.clamp_max_(x, 0.3)),
    ("clamp_", lambda m, x: m.clamp_(x, min=0.3, max=0.6)),
    ("clip_", lambda m, x: m.clip_(x, 0.25, 0.5)),
    ("clone", lambda m, x: m.clone(x)),
    ("detach", lambda m, x: m.detach(x)),
    ("fill_", lambda m, x: m.fill_(x, 2.5)),
    ("unflatten", lambda m, x: m.unflatten(x, 1, (1, 3))),
    ("adjoint", lambda m, x: m.adjoint(x)),
    ("logit_", lambda m, x: m.logit_(x, eps=0.25)),
    ("nan_to_num_", lambda m, x: m.nan_to_num_(x / 0.0 - x / 0.0, nan=1.5)),
    ("xlogy_", lambda m, x: m.xlogy_(x, x + 1)),
    ("ldexp_", lambda m, x: m.ldexp_(x, m.tensor([1.0, 2.0, 3.0], dtype=m.float64))),
    ("addmv_", lambda m, x: m.addmv_(x[0].clone(), x.t(), m.tensor([1.0, -2.0], dtype=m.float64), beta=0.5)),
    ("resize_as_", lambda m, x: m.resize_as_(x.reshape(-1).clone(), x).shape),
    ("is_same_size", lambda m, x: m.is_same_size(x, x.t())),
    ("is_signed", lambda m, x: m.is_signed(x)),
    ("is_inference", lambda m, x: m.is_inference(x)),
    ("get_device", lambda m, x: m.get_device(x)),
    ("cholesky_inverse", lambda m, x: m.cholesky_inverse(m.tensor([[2.0, 0.0], [0.5, 1.5]], dtype=m.float64))),
    ("qr", lambda m, x: m.qr(x.t())[1].abs()),
    ("gcd_", lambda m, x: m.gcd_(m.tensor([12, 18]), m.tensor([8, 12]))),
    ("lcm_", lambda m, x: m.lcm_(m.tensor([4, 6]), m.tensor([6, 4]))),
]


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_functions_with_arguments(name, call):
    tx, vx = both(X)
    tr, vr = call(torch, tx), call(vt, vx)
    if isinstance(tr, torch.Tensor):
        np.testing.assert_allclose(vr.numpy(), tr.numpy(), rtol=1e-12, atol=1e-15)
        assert vr.dtype == getattr(vt, str(tr.dtype).split(".")[-1])
        if name.endswith("_") and tr is tx:  # in place on the input
            assert vr is vx
            np.testing.assert_allclose(vx.numpy(), tx.numpy(), rtol=1e-12)
    else:
        assert tuple(vr) == tuple(tr) if isinstance(tr, torch.Size) else vr == tr


def test_clone_is_a_copy_and_input_by_keyword():
    v = vt.from_numpy(X.copy())
    c = vt.clone(input=v)
    c.zero_()
    np.testing.assert_array_equal(v.numpy(), X)
    np.testing.assert_array_equal(vt.clamp_min(input=v, min=0.5).numpy(),
                                  torch.clamp_min(input=torch.from_numpy(X), min=0.5).numpy())
    # the methods take torch's keyword names
    np.testing.assert_array_equal(v.clamp_max(max=0.3).numpy(), torch.from_numpy(X).clamp_max(max=0.3).numpy())


@pytest.mark.parametrize("name", ["clamp_min", "clone", "sqrt_", "unflatten"])
def test_non_tensor_input_refused(name):
    args = {"clamp_min": (0.5,), "clone": (), "sqrt_": (), "unflatten": (0, (1, 1))}[name]
    with pytest.raises(TypeError) as te:
        getattr(torch, name)(1.0, *args)
    with pytest.raises(TypeError) as ve:
        getattr(vt, name)(1.0, *args)
    assert str(ve.value).split(",")[0].split("(")[0] == str(te.value).split(",")[0].split("(")[0]
