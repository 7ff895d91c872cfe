"""torch.linspace on the CPU, bit for bit against torch (Note [Linspace arithmetic] in
core/src/ops/factories_impl.h): float32 and float64 compute the step and each value in their own type with a
fused multiply-add (start + i * step below the half, end - (steps - 1 - i) * step above it), float16 and
bfloat16 round every operation to 16 bits, integral dtypes go through double and truncate. Computing in double
and rounding once left float32 values an ulp away (Swin's stochastic-depth rates torch.linspace(0, 0.3, 4) among
them)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

CASES = [(0, 0.3, 4), (0, 1, 7), (0, 0.2, 12), (-1, 1, 101), (-2.5, 3.7, 11), (0, 1, 1000), (3, 10, 77),
         (-7.3, 2.1, 333), (5, -3, 9), (0, 1, 2), (2, 2, 5), (1e-3, 1e4, 5001), (0, 1, 1)]


def _same(v, t):
    if t.dtype in (torch.float16, torch.bfloat16):
        v, t = v.float(), t.float()
    np.testing.assert_array_equal(v.numpy(), t.numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                                   "uint8"])
def test_values_are_torchs_bit_for_bit(dtype):
    for args in CASES:
        try:
            t = torch.linspace(*args, dtype=getattr(torch, dtype))
        except RuntimeError:  # an endpoint the dtype cannot hold: both refuse (tests/core/test_factories.py)
            continue
        _same(vt.linspace(*args, dtype=getattr(vt, dtype)), t)


def test_random_endpoints_are_torchs_bit_for_bit():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = (float(x) for x in rng.uniform(-100, 100, 2) * 10.0 ** rng.integers(-3, 3, 2))
        n = int(rng.integers(2, 300))
        for dtype in ("float32", "float64", "bfloat16"):
            _same(vt.linspace(a, b, n, dtype=getattr(vt, dtype)), torch.linspace(a, b, n, dtype=getattr(torch, dtype)))


def test_float32_values_within_rounding_of_the_endpoints():
    # torch's float arithmetic leaves errors up to an ulp of the larger endpoint (its midpoint of linspace(-1, 1,
    # 101) is not 0), and so do vibetensor's, which are torch's
    for args in [(0, 0.3, 4), (0, 1, 7), (0, 0.2, 12), (-2.5, 3.7, 11), (-1, 1, 101)]:
        v = vt.linspace(*args).numpy()
        assert v.dtype == np.float32 and v[0] == np.float32(args[0]) and v[-1] == np.float32(args[1])
        eps = np.finfo(np.float32).eps * max(abs(args[0]), abs(args[1]))
        np.testing.assert_allclose(v, np.linspace(*args), rtol=0, atol=eps)
