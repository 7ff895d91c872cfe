"""A NumPy scalar on the left of a tensor operator (`np.log(2) - u` in SAC's tanh correction, `np.sqrt(d) * x`,
`gamma ** k * r` with a NumPy gamma), against torch: the tensor's reflected operator runs (NumPy defers to the
tensor's __array_priority__), so the result is a tensor of torch's dtype with its autograd history, not an
ndarray NumPy computed from the tensor's values."""
import operator

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
       "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "gt": operator.gt,
       "le": operator.le, "eq": operator.eq, "ne": operator.ne}
SCALARS = {"float64": np.float64(1.5), "float32": np.float32(2.0), "float16": np.float16(0.5), "int64": np.int64(3),
           "int32": np.int32(-2), "bool": np.bool_(True)}
DTYPES = ["float32", "int64", "float16"]


def _name(dtype):
    return str(dtype).split(".")[-1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scalar", sorted(SCALARS))
@pytest.mark.parametrize("op", sorted(OPS))
def test_numpy_scalar_on_the_left_gives_torchs_tensor(op, scalar, dtype):
    s = SCALARS[scalar]
    data = np.array([1.0, 2.0, 4.0])
    results = []
    for lib in (torch, vt):
        t = lib.tensor(data, dtype=getattr(lib, dtype))
        try:
            out = OPS[op](s, t)
        except Exception as e:  # e.g. torch's integer division by zero is an error in both or neither
            results.append(type(e))
            continue
        assert isinstance(out, lib.Tensor), type(out)
        results.append((_name(out.dtype), out.float().numpy()))
    if isinstance(results[0], type):
        assert results[1] is results[0]
        return
    assert results[1][0] == results[0][0]
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-3 if dtype == "float16" else 1e-6)


def test_the_gradient_flows_through_a_numpy_scalar_expression():
    """SAC's log-probability of a tanh-squashed Gaussian action."""
    eps = np.array([[0.3, -1.2]], dtype=np.float32)
    grads = []
    for lib in (torch, vt):
        mu = lib.tensor([[0.2, -0.3]], requires_grad=True)
        log_std = lib.tensor([[-0.5, 0.1]], requires_grad=True)
        u = mu + log_std.exp() * lib.from_numpy(eps)
        logp = lib.distributions.Normal(mu, log_std.exp()).log_prob(u).sum(-1)
        logp = logp - (2 * (np.log(2) - u - lib.nn.functional.softplus(-2 * u))).sum(-1)
        assert isinstance(logp, lib.Tensor) and logp.requires_grad
        logp.sum().backward()
        grads.append((logp.item(), mu.grad.numpy(), log_std.grad.numpy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-6)
    for v, t in zip(grads[1][1:], grads[0][1:]):
        np.testing.assert_allclose(v, t, rtol=1e-5, atol=1e-6)


def test_an_ndarray_on_the_left():
    # torch refuses it (its reflected operators take no array); vibetensor takes the array as a tensor
    # (tests/core/test_ndarray_operand_surface.py), a deliberate widening that keeps the history
    with pytest.raises(TypeError):
        np.array([1.0, 2.0]) * torch.tensor([1.0, 2.0])
    r = np.array([1.0, 2.0]) * vt.tensor([1.0, 2.0])
    assert isinstance(r, vt.Tensor) and r.tolist() == [1.0, 4.0]