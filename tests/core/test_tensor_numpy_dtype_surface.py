"""torch.tensor / torch.as_tensor on data holding NumPy scalars and arrays, against torch: the NumPy leaves keep
their dtypes (rewards from a NumPy environment are np.float64, a replay buffer's observations float64 arrays,
indices np.int32) and promote with Python numbers as torch promotes them; data of Python numbers only keeps the
defaults. Values and dtypes both compared."""
import warnings

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

CASES = {
    "np_float64_scalar": lambda: np.float64(1.5),
    "np_float32_scalar": lambda: np.float32(1.5),
    "np_int32_scalar": lambda: np.int32(7),
    "np_bool_scalar": lambda: np.bool_(True),
    "list_of_np_float64": lambda: [np.float64(1.0), np.float64(-2.5)],
    "list_of_np_float16": lambda: [np.float16(1.0), np.float16(0.5)],
    "list_of_np_int16": lambda: [np.int16(1), np.int16(-3)],
    "list_of_float64_arrays": lambda: [np.array([1.0, 2.0]), np.array([3.0, 4.0])],
    "tuple_of_float32_arrays": lambda: (np.array([1.0], dtype=np.float32), np.array([2.0], dtype=np.float32)),
    "list_of_int32_arrays": lambda: [np.array([1, 2], dtype=np.int32)],
    "nested_mixed": lambda: [[np.float64(1.0), 2.0], [3.0, 4.0]],
    "py_float_then_np_float64": lambda: [0.1, np.float64(0.2)],  # float64: 0.1 is not rounded to float32
    "np_int32_and_py_float": lambda: [np.int32(1), 2.5],
    "np_int8_and_py_int": lambda: [np.int8(1), 300],
    "np_uint8_and_np_int8": lambda: [np.uint8(200), np.int8(-1)],
    "np_float16_and_py_float": lambda: [np.float16(1.0), 2.0],
    "np_float16_and_py_int": lambda: [np.float16(1.0), 2],
    "py_bool_and_np_int16": lambda: [True, np.int16(3)],
    "py_floats_only": lambda: [0.1, 0.2],
    "py_ints_only": lambda: [1, 2],
    "empty": lambda: [],
}


def _both(make, fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: "a list of numpy.ndarrays is extremely slow"
        t = fn(torch)(make())
    v = fn(vt)(make())
    return v, t


def _check(v, t):
    assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    assert tuple(v.shape) == tuple(t.shape)
    np.testing.assert_array_equal(v.numpy(), t.numpy())


@pytest.mark.parametrize("name", sorted(CASES))
def test_tensor_infers_torchs_dtype(name):
    _check(*_both(CASES[name], lambda lib: lib.tensor))


@pytest.mark.parametrize("name", sorted(CASES))
def test_as_tensor_infers_torchs_dtype(name):
    _check(*_both(CASES[name], lambda lib: lib.as_tensor))


def test_an_explicit_dtype_still_wins():
    for lib in (torch, vt):
        x = lib.tensor([np.float64(0.1), np.float64(0.2)], dtype=lib.float32, requires_grad=True)
        assert x.dtype == lib.float32 and x.requires_grad


def test_discounted_returns_from_numpy_rewards_keep_float64():
    """REINFORCE's returns from a NumPy environment's rewards are float64 in torch: normalised in float64, and the
    policy loss against float32 log-probabilities is float64 too."""
    rewards = [np.float64(r) for r in (0.1, -0.05, 1.0)]
    out = []
    for lib in (torch, vt):
        returns = lib.tensor(rewards)
        returns = (returns - returns.mean()) / (returns.std() + 1e-8)
        loss = -(lib.tensor([-0.5, -1.0, -0.25]) * returns).sum()
        out.append((str(returns.dtype).split(".")[-1], str(loss.dtype).split(".")[-1], returns.numpy(), loss.item()))
    assert out[1][:2] == out[0][:2] == ("float64", "float64")
    np.testing.assert_allclose(out[1][2], out[0][2], rtol=1e-12)
    np.testing.assert_allclose(out[1][3], out[0][3], rtol=1e-7)
