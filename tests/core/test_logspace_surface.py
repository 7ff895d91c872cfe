"""torch.logspace against torch: the values (float64 bit-equal, float32 and float16 to a few ulp: torch's
narrower kernels round differently) over starts, ends, step counts and bases, integer dtypes (truncated start
and end, truncated powers), the one-step fill, 0-dim tensor ends, the factory keywords, and torch's errors."""
import itertools

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

GRID = list(itertools.product([0, -2, 0.5, -3.7, 2.25], [3, -1.3, 7.9], [0, 1, 2, 5, 6, 33], [10.0, 2.0, 0.5, 3]))


@pytest.mark.parametrize("dtype,rtol", [("float64", 0), ("float32", 1e-6), ("float16", 5e-3)])
def test_float_values(dtype, rtol):
    for start, end, steps, base in GRID:
        t = torch.logspace(start, end, steps, base=base, dtype=getattr(torch, dtype))
        v = vt.logspace(start, end, steps, base=base, dtype=getattr(vt, dtype))
        assert v.dtype == getattr(vt, dtype) and tuple(v.shape) == tuple(t.shape) == (steps,)
        np.testing.assert_allclose(v.numpy(), t.numpy(), rtol=rtol, atol=0, err_msg=str((start, end, steps, base)))


def test_default_dtype_and_symmetric_halves():
    v, t = vt.logspace(0, 3, 6), torch.logspace(0, 3, 6)
    assert v.dtype == vt.float32
    np.testing.assert_allclose(v.numpy(), t.numpy(), rtol=1e-7)
    # the upper half counts down from end: 10 ** (3 - 0.6 * 2) is exactly torch's, not 10 ** (0.6 * 3)
    v64 = vt.logspace(0, 3, 6, dtype=vt.float64).numpy()
    assert v64[3] == torch.logspace(0, 3, 6, dtype=torch.float64)[3].item() == 10.0 ** 1.8
    assert v64[-1] == 1000.0 and v64[0] == 1.0


@pytest.mark.parametrize("args,kw", [
    ((0, 3, 4), dict(dtype="int64")), ((0.5, 3, 4), dict(base=2, dtype="int32")),
    ((-1.7, 2.9, 5), dict(base=3, dtype="int64")), ((2.25, -1.3, 1), dict(base=3, dtype="uint8")),
    ((1, 2, 0), dict(dtype="int16")), ((0, 2, 3), dict(base=0.5, dtype="int8")),
])
def test_integer_dtypes(args, kw):
    d = kw.pop("dtype")
    t = torch.logspace(*args, dtype=getattr(torch, d), **kw)
    v = vt.logspace(*args, dtype=getattr(vt, d), **kw)
    assert v.dtype == getattr(vt, d)
    np.testing.assert_array_equal(v.numpy(), t.numpy())


def test_tensor_ends_and_factory_keywords():
    t = torch.logspace(torch.tensor(-1.0), torch.tensor(2.0), 4, base=2.0, dtype=torch.float64)
    v = vt.logspace(vt.tensor(-1.0), vt.tensor(2.0), 4, base=2.0, dtype=vt.float64)
    np.testing.assert_array_equal(v.numpy(), t.numpy())
    r = vt.logspace(0, 1, 3, requires_grad=True, device="cpu")
    assert r.requires_grad and r.is_leaf and r.device.type == "cpu"


@pytest.mark.parametrize("args,kw", [
    ((0, 1, -1), {}), ((0, 1, 2.5), {}), ((10, 0, 1), dict(dtype="int32")), ((0, 300, 2), dict(dtype="uint8")),
    ((0, 1, 3), dict(dtype="bool")),
])
def test_errors_match_torch(args, kw):
    d = kw.pop("dtype", None)
    with pytest.raises(Exception) as te:
        torch.logspace(*args, dtype=d and getattr(torch, d), **kw)
    with pytest.raises(type(te.value)) as ve:
        vt.logspace(*args, dtype=d and getattr(vt, d), **kw)
    if not isinstance(te.value, TypeError):  # torch's TypeError lists its overloads
        assert str(ve.value) == str(te.value)


def test_one_dimensional_end_refused():
    with pytest.raises(RuntimeError) as te:
        torch.logspace(torch.tensor([0.0, 1.0]), 2, 3)
    with pytest.raises(RuntimeError) as ve:
        vt.logspace(vt.tensor([0.0, 1.0]), 2, 3)
    assert str(ve.value) == str(te.value)
