"""torch.autograd.Variable against torch: calling it detaches (same data, no graph), requires grad only when asked,
accepts no non-tensor data, warns on volatile, and every tensor is an instance of it."""
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from torch.autograd import Variable as TVariable
from vibetensor.torch.autograd import Variable as VVariable


def test_variable_detaches_and_shares_data():
    for mod, Var in ((torch, TVariable), (vt, VVariable)):
        x = mod.ones(3, requires_grad=True)
        y = x * 2
        v = Var(y)
        assert v is not y and v.grad_fn is None and not v.requires_grad and v.is_leaf
        assert v.data_ptr() == y.data_ptr()
        w = Var(y, requires_grad=True)
        assert w.requires_grad and w.is_leaf and w.grad_fn is None
        (w * w).sum().backward()
        np.testing.assert_array_equal(w.grad.numpy(), [4.0, 4.0, 4.0])
        assert x.grad is None  # the graph behind y was cut
        assert isinstance(x, Var) and isinstance(v, mod.Tensor) and not isinstance(1.0, Var)


def test_variable_of_numpy_data_as_old_model_code_builds_it():
    a = np.array([1, 0, 0, 0, 1, 0, 0, 0, 1]).astype(np.float32)
    t = TVariable(torch.from_numpy(a)).view(1, 9).repeat(2, 1)
    v = VVariable(vt.from_numpy(a)).view(1, 9).repeat(2, 1)
    assert v.dtype == vt.float32 and tuple(v.shape) == tuple(t.shape)
    np.testing.assert_array_equal(v.numpy(), t.numpy())
    assert tuple(VVariable().shape) == tuple(TVariable().shape) == (0,)
    assert VVariable().dtype == vt.float32


def test_variable_errors_and_warnings_match_torch():
    for mod, Var in ((torch, TVariable), (vt, VVariable)):
        with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
            Var([1.0, 2.0])
        with pytest.raises(RuntimeError, match="floating point"):
            Var(mod.ones(2, dtype=mod.int64), requires_grad=True)
        with pytest.raises(TypeError):
            Var(mod.ones(2), foo=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = Var(mod.ones(2), volatile=True)
        assert not out.requires_grad
        assert any("volatile was removed" in str(w.message) for w in caught)
