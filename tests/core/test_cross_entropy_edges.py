"""cross_entropy at its edges against torch (CPU, the oracle): 0 classes, a target of the input's shape that is
not floating, targets of the wrong size beside 1-d inputs, an empty batch beside a 0-dim target, and the order of
torch's argument checks (the first bad argument decides the exception kind). With the `cuda` marker vibetensor's
tensors are on the GPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import assert_raises_like, assert_same, run_torch

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
REDUCTIONS = ["mean", "sum", "none"]


def _check(input_shape, target, device, **kwargs):
    """cross_entropy of a linspace input of `input_shape` and `target` (an array: int64 class indices or floating
    probabilities), on both sides."""
    n = int(np.prod(input_shape))
    x = np.linspace(-1.0, 1.0, n, dtype=np.float32).reshape(input_shape)
    target = np.asarray(target)

    def fn(m):
        xt, tt = m.tensor(x), m.tensor(target)
        if m is vt and device != "cpu":
            xt, tt = xt.to(device), tt.to(device)
        return m.nn.functional.cross_entropy(xt, tt, **kwargs)

    expected, exc = run_torch(fn)
    if exc is not None:
        return assert_raises_like(exc, lambda: fn(vt))
    assert_same(fn(vt), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", [
    ((0, 0), np.zeros(0, np.int64)),            # no rows, no classes: an empty loss (mean NaN, sum 0)
    ((0, 0, 3), np.zeros((0, 3), np.int64)),
    ((3, 0), np.zeros(3, np.int64)),            # rows but no classes: every target is out of bounds
    ((2, 0), np.zeros((2, 0), np.float32)),     # probabilities over no classes: zeros (torch's mean: 0 / 0)
    ((2, 0, 3), np.zeros((2, 0, 3), np.float32)),
], ids=lambda c: str(c[0]) + str(c[1].dtype))
def test_no_classes(case, reduction, device):
    """A shape inferred with -1 had no answer when C = 0: vibetensor raised from its reshape."""
    if device != "cpu" and case[0] == (3, 0):
        pytest.skip("an out-of-range class index is reported by the GPU's kernel, after the call returns")
    _check(case[0], case[1], device, reduction=reduction)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", [
    ((), np.int64(1)),                          # 0-dim input and integer target of its shape: probabilities?
    ((3,), np.zeros(3, np.int64)),              # an integer target of the input's shape
    ((2, 3), np.zeros((2, 3), np.int64)),
    ((4,), np.array([1, 2])),                   # 1-d input: a 1-d target must have one element
    ((4,), np.zeros(0, np.int64)),
    ((4,), np.array([3])),
    ((0, 4), np.int64(1)),                      # an empty batch beside a 0-dim target
    ((3, 4), np.int64(1)),
], ids=lambda c: str(c[0]) + str(np.shape(c[1])))
def test_target_shapes(case, device):
    _check(case[0], case[1], device)


@pytest.mark.parametrize("call", [
    # the 1-d target's size before the weight's shape
    lambda m: m.nn.functional.cross_entropy(m.zeros(4), m.tensor([1, 2]), weight=m.ones(1)),
    # an empty batch's 0-dim target before a bool input's log_softmax
    lambda m: m.nn.functional.cross_entropy(m.zeros(0, 2, dtype=m.bool), m.tensor(1)),
    # ignore_index beside a float target of another shape: the batch check comes first
    lambda m: m.nn.functional.cross_entropy(m.zeros(1, 3), m.zeros(3), ignore_index=2),
    # ... and beside one of the input's shape, ignore_index is refused
    lambda m: m.nn.functional.cross_entropy(m.zeros(1, 3), m.zeros(1, 3), ignore_index=2),
    # an integer target of the input's shape: refused as probabilities before the 0-dim input's dim error
    lambda m: m.nn.functional.cross_entropy(m.tensor(1.0), m.tensor(1)),
])
def test_check_order(call):
    """With several bad arguments the first one torch checks decides the exception kind."""
    expected, exc = run_torch(call)
    assert exc is not None
    assert_raises_like(exc, lambda: call(vt))
