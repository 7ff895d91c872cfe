"""copy.deepcopy and pickle of tensors, Parameters, devices and whole modules, against torch's behaviour."""
import copy
import pickle

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (4, 0, 2)])
def test_pickle_and_deepcopy_round_trip(dtype, shape):
    n = int(np.prod(shape))
    t = (vt.arange(float(n)) - 2).reshape(shape).to(getattr(vt, dtype))
    for got in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert got.dtype == t.dtype and tuple(got.shape) == shape and got.device == t.device
        assert vt.equal(got, t) and got.data_ptr() != t.data_ptr() or n == 0


def test_views_requires_grad_and_attributes():
    base = vt.arange(12.0).reshape(3, 4)
    view = base.t()[1:]  # non-contiguous: pickled as its own data
    assert pickle.loads(pickle.dumps(view)).tolist() == view.tolist()
    x = vt.ones(3, requires_grad=True)
    x.grad = vt.full((3,), 2.0)
    x.note = "kept"
    y = copy.deepcopy(x)
    assert y.requires_grad and y.is_leaf and y.grad.tolist() == [2.0] * 3 and y.note == "kept"
    y.grad.add_(1.0)
    assert x.grad.tolist() == [2.0] * 3  # the grad was copied, not shared
    z = pickle.loads(pickle.dumps(x))
    assert z.requires_grad and z.note == "kept"
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x * 2)
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(torch.ones(2, requires_grad=True) * 2)  # the same rule as torch
    shared = {"a": x, "b": x}
    c = copy.deepcopy(shared)
    assert c["a"] is c["b"]  # one copy per tensor (the memo)
    assert pickle.loads(pickle.dumps(vt.device("cpu"))) == vt.device("cpu")


def test_deepcopy_of_a_module_matches_torch():
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    v = vt.nn.Sequential(vt.nn.Linear(3, 4), vt.nn.LayerNorm(4))
    v.load_state_dict({k: vt.from_numpy(p.detach().numpy().copy()) for k, p in t.state_dict().items()})
    for m in (copy.deepcopy(v), pickle.loads(pickle.dumps(v))):
        assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
        assert all(isinstance(p, vt.nn.Parameter) and p.requires_grad for p in m.parameters())
        x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
        np.testing.assert_allclose(m(vt.from_numpy(x)).detach().numpy(), t(torch.from_numpy(x)).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)
        with vt.no_grad():
            next(iter(m.parameters())).add_(1.0)
        assert not vt.equal(next(iter(m.parameters())), next(iter(v.parameters())))  # independent weights
