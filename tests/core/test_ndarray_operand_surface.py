"""A NumPy array as the other operand of a tensor's arithmetic (x * np.array(...), x + mean_array in preprocessing
code): the tensor of the array's data, as torch's operators accept it. torch computes such a mix through NumPy
(the tensor converted by __array__, the result wrapped back), so its dtype follows NumPy's promotion and its
history is lost; vibetensor takes the array as a tensor, so its history is kept and torch's type promotion
applies (the two agree for float arrays and where both rules give the same dtype)."""
import operator

import numpy as np
import pytest
import torch
import vibetensor.torch as vt


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv])
@pytest.mark.parametrize("arr", [np.array([0.5, -2.0, 3.0]), np.array([[1.5], [2.5]], dtype=np.float32)])
def test_array_operand_values_and_dtype_as_torch(op, arr):
    x = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    v, t = op(vt.from_numpy(x.copy()), arr), op(torch.from_numpy(x.copy()), arr)
    assert isinstance(v, vt.Tensor) and v.dtype == getattr(vt, str(t.dtype).split(".")[-1])
    np.testing.assert_array_equal(v.numpy(), t.numpy())
    # the array on the left: NumPy defers to the tensor (__array_priority__); torch's own result there depends on
    # NumPy's dispatch (it raises for some of these), so NumPy is the reference
    r = op(arr, vt.from_numpy(x.copy()))
    assert isinstance(r, vt.Tensor)
    np.testing.assert_allclose(r.numpy(), op(arr, x.astype(r.numpy().dtype)), rtol=1e-6)


def test_history_is_kept():
    x = vt.tensor([1.0, 2.0], requires_grad=True)
    (x * np.array([3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


def test_other_sequences_stay_refused():
    with pytest.raises(TypeError, match="must be Tensor or a number"):
        vt.ones(2) + "ab"
    with pytest.raises(TypeError):
        vt.ones(2) + [1.0, 2.0]
    with pytest.raises(TypeError):
        torch.ones(2) + [1.0, 2.0]
