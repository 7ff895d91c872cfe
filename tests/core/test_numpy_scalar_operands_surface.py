"""A number on the left of a tensor, against torch. A NumPy scalar (Tensor.__array_priority__): np.float64(2) * x
is a tensor of torch's dtype, with autograd history, as model code gets from np.sqrt(2 / np.pi) * x; before,
NumPy turned x into an ndarray through __array__ and the result left the graph. A number divided by a tensor:
torch's reciprocal-times-number, bit for bit (one division rounded otherwise in float16, bfloat16 and float32)."""
import operator

import numpy as np
import pytest
import torch
import vibetensor.torch as vt

X = np.array([[0.5, -1.5, 2.0], [3.0, 1.0, -0.25]], dtype=np.float32)

OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
       "pow": operator.pow, "lt": operator.lt, "ge": operator.ge, "eq": operator.eq, "ne": operator.ne}
INT_OPS = {"floordiv": operator.floordiv, "mod": operator.mod, "mul": operator.mul, "sub": operator.sub}
SCALARS = [np.float64(2.5), np.float32(1.5), np.int64(3), np.float16(0.5)]


def check(v, t):
    assert isinstance(v, vt.Tensor), type(v)
    assert str(v.dtype).rsplit(".", 1)[-1] == str(t.dtype).rsplit(".", 1)[-1]
    assert v.tolist() == t.tolist()


@pytest.mark.parametrize("scalar", SCALARS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", ["float32", "float16", "int64"])
def test_numpy_scalar_op_tensor_is_torchs_tensor(op, scalar, dtype):
    x = X if dtype != "int64" else np.array([[1, 2, 3], [4, 5, 6]])
    t = torch.from_numpy(x.copy()).to(getattr(torch, dtype))
    v = vt.from_numpy(x.copy()).to(getattr(vt, dtype))
    check(OPS[op](scalar, v), OPS[op](scalar, t))


@pytest.mark.parametrize("op", list(INT_OPS))
def test_integer_ops_keep_torchs_dtypes(op):
    x = np.array([[1, 2, 3], [4, 5, 6]])
    check(INT_OPS[op](np.int64(7), vt.from_numpy(x)), INT_OPS[op](np.int64(7), torch.from_numpy(x)))


def test_the_result_keeps_autograd_history():
    grads = []
    for lib in (torch, vt):
        x = lib.from_numpy(X.copy()).requires_grad_(True)
        y = np.sqrt(2.0 / np.pi) * (x + np.float32(0.044715) * x ** 3) - np.float64(1.0) / (x * x + 1)
        assert isinstance(y, lib.Tensor) and y.requires_grad
        y.sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5)


def test_an_ndarray_on_the_left_defers_to_the_tensor():
    # torch refuses it; vibetensor takes the array as a tensor (tests/core/test_ndarray_operand_surface.py)
    with pytest.raises(TypeError):
        np.ones(3, dtype=np.float32) + torch.ones(3)
    assert isinstance(np.ones(3, dtype=np.float32) + vt.ones(3), vt.Tensor)
    assert vt.Tensor.__array_priority__ == torch.Tensor.__array_priority__


@pytest.mark.parametrize("number", [2.5, 3, np.float64(0.1), True])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "bool"])
def test_a_number_divided_by_a_tensor_is_torchs_bit_for_bit(number, dtype):
    x = np.array([-1.5, 3.0, 0.7, 1.3, 1e-3, 7.0], dtype=np.float32)
    if dtype in ("int64", "bool"):
        x = np.array([1, 3, 7, 2, 0, 9]).astype(dtype)
    t = torch.from_numpy(x.copy()).to(getattr(torch, dtype))
    v = vt.from_numpy(x.copy()).to(getattr(vt, dtype))
    check(number / v, number / t)
    tx = torch.from_numpy(x.copy()).float().requires_grad_(True)
    vx = vt.from_numpy(x.copy()).float().requires_grad_(True)
    (number / tx).sum().backward()
    (number / vx).sum().backward()
    check(vx.grad, tx.grad)
