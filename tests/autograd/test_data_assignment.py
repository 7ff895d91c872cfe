"""Assigning Tensor.data (Note [Data assignment]): the tensor keeps its identity and autograd state (requires_grad,
a leaf's .grad, hooks, what optimizers and modules hold) and takes the new tensor's values, shape, dtype and
storage, as torch's; views made before keep the old storage; the errors torch raises."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def test_values_shape_and_identity_as_torch():
    for lib in (torch, vt):
        p = lib.nn.Parameter(lib.zeros(3))
        old_view = p.detach()[:2]
        ident = id(p)
        p.data = lib.arange(6, dtype=lib.float32).reshape(2, 3)
        assert id(p) == ident and isinstance(p, lib.nn.Parameter) and p.requires_grad
        assert tuple(p.shape) == (2, 3) and p.is_leaf
        assert np.array_equal(np.asarray(p.detach().tolist()), np.arange(6).reshape(2, 3))
        assert old_view.tolist() == [0.0, 0.0]  # a view made before keeps the old storage
        p.data = p.data.double()  # a dtype change, as Module._apply once did
        assert p.dtype == lib.float64


def test_optimizer_and_grad_follow_the_assignment():
    """The optimizer holds the same tensor, so a step after `p.data = ...` updates the new values."""
    results = []
    for lib in (torch, vt):
        lin = lib.nn.Linear(3, 2)
        opt = lib.optim.SGD(lin.parameters(), lr=0.5)
        lin.weight.data = lib.ones(2, 3)
        lin.bias.data = lib.zeros(2)
        loss = lin(lib.ones(4, 3)).sum()
        loss.backward()
        opt.step()
        results.append(np.asarray(lin.weight.detach().tolist()))
    np.testing.assert_allclose(results[1], results[0])


def test_storage_is_shared_with_the_assigned_tensor():
    src = vt.zeros(4)
    p = vt.nn.Parameter(vt.ones(4))
    p.data = src
    src.add_(2.0)  # torch: the parameter now views src's storage
    assert p.detach().tolist() == [2.0, 2.0, 2.0, 2.0]


def test_errors():
    p = vt.nn.Parameter(vt.zeros(2))
    for lib, q in ((torch, torch.nn.Parameter(torch.zeros(2))), (vt, p)):  # torch's types and messages
        with pytest.raises(TypeError, match="has to be a tensor, but got list"):
            q.data = [1.0, 2.0]
        with pytest.raises(RuntimeError, match="must be floating point or complex dtype"):
            q.data = lib.zeros(2, dtype=lib.int64)
    plain = vt.zeros(2)
    plain.data = vt.zeros(3, dtype=vt.int64)  # no grad wanted: any dtype, as torch
    assert plain.dtype == vt.int64 and tuple(plain.shape) == (3,)
