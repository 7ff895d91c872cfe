"""gelu and its backward on the CPU's vectorised float path (core/src/ops/cpu_math.h): both tails, special
values, odd, empty, broadcast and non-contiguous shapes, against torch and a float64 reference."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import assert_same, check_op, pair, pair_from_numpy


def _phi64(x):
    return 0.5 * np.vectorize(math.erfc)(-x / math.sqrt(2.0))


def test_gelu_float_tails_match_float64():
    # the left tail is where 1 + erf(x) cancels; the fast path keeps relative accuracy there
    x = np.linspace(-12, 12, 200_003, dtype=np.float32)
    got = vt.nn.functional.gelu(vt.from_numpy(x)).numpy().astype(np.float64)
    x64 = x.astype(np.float64)
    ref = x64 * _phi64(x64)
    # relative 2e-5 where gelu is ~1e-30 (float rounding of the exp argument x^2/2), far inside torch's atol
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-10)


def test_gelu_backward_float_matches_float64():
    x = np.linspace(-14, 14, 100_001, dtype=np.float32)
    g = np.full_like(x, 1.5)
    got = vt.ops.vt.gelu_backward(vt.from_numpy(g), vt.from_numpy(x)).numpy().astype(np.float64)
    x64 = x.astype(np.float64)
    ref = 1.5 * (_phi64(x64) + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi))
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=2e-7)


def test_gelu_special_values_like_torch():
    vals = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 87.5, -87.5, 100.0, -100.0, 3.4e38,
                     -3.4e38], dtype=np.float32)
    x, g = torch.from_numpy(vals), torch.ones(len(vals))
    want_f = torch.nn.functional.gelu(x.double()).float()  # torch's float32 gelu(+inf) is nan; float64's inf
    assert_same(vt.nn.functional.gelu(vt.from_numpy(vals)), want_f, atol=1e-6)
    want_b = torch.ops.aten.gelu_backward(g.double(), x.double()).float()
    assert_same(vt.ops.vt.gelu_backward(vt.from_numpy(g.numpy()), vt.from_numpy(vals)), want_b, atol=1e-6)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (1,), (7,), (3, 1, 5), (33, 17), (1027,)], ids=str)
@pytest.mark.parametrize("noncontig", [False, "transpose", "slice", "expand"])
def test_gelu_and_backward_shapes(shape, noncontig):
    if noncontig and len(shape) < 2:
        pytest.skip("needs two dims")
    x = pair(shape, "float32", noncontig=noncontig, low=-6, high=6, seed=1)
    g = pair(shape, "float32", noncontig=noncontig, seed=2)
    check_op(lambda m, a: m.nn.functional.gelu(a), x, rtol=1e-5, atol=1e-6)
    got = vt.ops.vt.gelu_backward(g.v, x.v)
    assert_same(got, torch.ops.aten.gelu_backward(g.t, x.t), rtol=1e-5, atol=1e-6)


def test_gelu_backward_broadcast_grad():
    x = pair((4, 9), "float32", low=-5, high=5, seed=3)
    g = pair_from_numpy(np.float32([[2.0]]))
    got = vt.ops.vt.gelu_backward(g.v, x.v)
    assert_same(got, torch.ops.aten.gelu_backward(g.t.expand(4, 9), x.t), rtol=1e-5, atol=1e-6)
