"""topk on the CPU is a partial sort of each row (sort.cpp's topk_cpu): its k results must be exactly the stable
sort's first k - values and indices, ties in position order, NaN the largest - and torch's values, for every
dtype, dim, k (0 to n), largest and smallest, non-contiguous inputs and empty rows."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import ALL_DTYPES

SHAPES = [(7,), (4, 9), (3, 1, 6), (2, 0, 5), (5, 33)]


def _data(rng, shape, dtype):
    a = rng.integers(-3, 4, size=shape).astype(np.float64)  # few distinct values: many ties
    if dtype.startswith(("float", "bfloat")) and a.size:
        a.flat[rng.integers(a.size, size=max(1, a.size // 7))] = np.nan
        a += rng.choice([0.0, 0.25], size=shape)
    return a


@pytest.mark.parametrize("dtype", [d for d in ALL_DTYPES if d != "bool"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_topk_is_the_stable_sorts_first_k(shape, dtype, rng):
    a = _data(rng, shape, dtype)
    x = vt.from_numpy(a).to(getattr(vt, dtype))
    t = torch.from_numpy(a).to(getattr(torch, dtype))
    for dim in range(-len(shape), len(shape)):
        n = shape[dim]
        for k in sorted({0, min(1, n), n // 2, n}):
            for largest in (True, False):
                values, indices = x.topk(k, dim, largest)
                s_values, s_indices = x.sort(dim, descending=largest, stable=True)
                want_v, want_i = s_values.narrow(dim, 0, k), s_indices.narrow(dim, 0, k)
                np.testing.assert_array_equal(indices.numpy(), want_i.numpy())
                np.testing.assert_array_equal(values.to(vt.float64).numpy(), want_v.to(vt.float64).numpy())
                t_values = t.topk(k, dim, largest).values
                np.testing.assert_array_equal(values.to(vt.float64).numpy(), t_values.double().numpy())


def test_noncontiguous_input_and_gradient():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::-2]
    x = vt.from_numpy(np.ascontiguousarray(a)).t().requires_grad_()
    t = torch.from_numpy(np.ascontiguousarray(a)).t().requires_grad_()
    (vx, ix), (vt_, it) = x.topk(2, 0), t.topk(2, 0)
    np.testing.assert_array_equal(ix.numpy(), it.numpy())
    vx.sum().backward()
    vt_.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_k_out_of_range_is_refused():
    with pytest.raises(RuntimeError, match="k out of range"):
        vt.ones(3).topk(4)
