"""topk on the CPU is a partial sort of each row (sort.cpp's topk_cpu), on CUDA a radix select then a sort of the k
(Note [Top-k by radix select] in cuda/topk.cu): on both, its k results must be exactly the stable sort's first k -
values and indices, ties in position order, NaN the largest, -0.0 equal to +0.0 - and torch's values, for every
dtype, dim, k (0 to n), largest and smallest, non-contiguous inputs, empty rows, long rows (a vocabulary's
logits), a few rows long enough to be split over several blocks each (Note [Multi-block select]), and keys that
differ only in their lowest byte (the select's last pass)."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import ALL_DTYPES

SHAPES = [(7,), (4, 9), (3, 1, 6), (2, 0, 5), (5, 33), (2, 700)]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _data(rng, shape, dtype):
    a = rng.integers(-3, 4, size=shape).astype(np.float64)  # few distinct values: many ties
    if dtype.startswith(("float", "bfloat")) and a.size:
        a.flat[rng.integers(a.size, size=max(1, a.size // 7))] = np.nan
        a += rng.choice([0.0, 0.25], size=shape)
    return a


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [d for d in ALL_DTYPES if d != "bool"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_topk_is_the_stable_sorts_first_k(shape, dtype, device, rng):
    a = _data(rng, shape, dtype)
    x = vt.from_numpy(a).to(getattr(vt, dtype)).to(device)
    t = torch.from_numpy(a).to(getattr(torch, dtype))
    for dim in range(-len(shape), len(shape)):
        n = shape[dim]
        for k in sorted({0, min(1, n), n // 2, n}):
            for largest in (True, False):
                values, indices = x.topk(k, dim, largest)
                s_values, s_indices = x.sort(dim, descending=largest, stable=True)
                want_v, want_i = s_values.narrow(dim, 0, k), s_indices.narrow(dim, 0, k)
                assert values.device == x.device and indices.device == x.device
                values, indices, want_v, want_i = (r.cpu() for r in (values, indices, want_v, want_i))
                np.testing.assert_array_equal(indices.numpy(), want_i.numpy())
                np.testing.assert_array_equal(values.to(vt.float64).numpy(), want_v.to(vt.float64).numpy())
                t_values = t.topk(k, dim, largest).values
                np.testing.assert_array_equal(values.to(vt.float64).numpy(), t_values.double().numpy())


def _check_first_k(x, k, largest=True):
    values, indices = x.topk(k, -1, largest)
    s_values, s_indices = x.sort(-1, descending=largest, stable=True)
    np.testing.assert_array_equal(indices.cpu().numpy(), s_indices[..., :k].cpu().numpy())
    np.testing.assert_array_equal(values.cpu().to(vt.float64).numpy(), s_values[..., :k].cpu().to(vt.float64).numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_long_rows_and_close_keys(device, rng):
    logits = rng.standard_normal((3, 50257)).astype(np.float32)
    logits[1, rng.integers(50257, size=200)] = 3.5  # many ties at the top
    for k in (1, 50, 257, 1024, 1025, 50257):  # 1025: past the in-block ordering (Note [Top-k by radix select])
        for largest in (True, False):
            _check_first_k(vt.from_numpy(logits).to(device), k, largest)
    # keys that differ only in their lowest byte, around zero and at int64's ends; signed zeros are ties
    base = np.array([0, 1, 2, 255, 256, -1, -2, -256, 2**63 - 1, -(2**63), 2**63 - 2, -(2**63) + 1], dtype=np.int64)
    ints = vt.from_numpy(np.tile(rng.permutation(base), (2, 3))).to(device)
    floats = vt.from_numpy(np.array([[1.0, np.nextafter(1.0, 2.0), -0.0, 0.0, np.nextafter(1.0, 0.0), -0.0, np.nan,
                                      np.inf, -np.inf, np.nan, 5e-324, -5e-324]])).to(device)
    for x in (ints, floats, floats.to(vt.float32), floats.to(vt.bfloat16)):
        for k in range(x.shape[-1] + 1):
            _check_first_k(x, k, True)
            _check_first_k(x, k, False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "float16", "bfloat16"])
def test_few_long_rows_with_ties_across_slices(dtype, device, rng):
    # one and two rows of 40,000 / 70,000 keys: on CUDA every row is cut into slices of ~8,192 keys, a block each.
    # Few distinct values put the k-th key's ties in every slice; NaN and -0.0 among them on floating dtypes.
    for shape in ((1, 40000), (2, 70000)):
        a = rng.integers(-40, 40, size=shape).astype(np.float64)
        if dtype.startswith(("float", "bfloat")):
            a.flat[rng.integers(a.size, size=a.size // 50)] = np.nan
            a.flat[rng.integers(a.size, size=a.size // 50)] = -0.0
        x = vt.from_numpy(a).to(getattr(vt, dtype)).to(device)
        for k in (1, 7, 1000, 1024, 1025, 4000, shape[1]):
            for largest in (True, False):
                _check_first_k(x, k, largest)
        t = torch.from_numpy(a).to(getattr(torch, dtype))
        np.testing.assert_array_equal(x.topk(600, largest=False).values.cpu().to(vt.float64).numpy(),
                                      t.topk(600, largest=False).values.double().numpy())
    column = vt.from_numpy(rng.standard_normal((30000, 3))).to(getattr(vt, dtype)).to(device)  # along dim 0
    values, indices = column.topk(50, 0)
    s_values, s_indices = column.sort(0, descending=True, stable=True)
    np.testing.assert_array_equal(indices.cpu().numpy(), s_indices[:50].cpu().numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_many_short_rows_along_a_middle_dim(device, rng):
    a = rng.integers(-4, 4, size=(300, 5, 40)).astype(np.float32)
    x, t = vt.from_numpy(a).to(device), torch.from_numpy(a)
    for k in (0, 1, 3, 5):
        values, indices = x.topk(k, 1)
        s_values, s_indices = x.sort(1, descending=True, stable=True)
        np.testing.assert_array_equal(indices.cpu().numpy(), s_indices[:, :k].cpu().numpy())
        np.testing.assert_array_equal(values.cpu().numpy(), t.topk(k, 1).values.numpy())


def test_noncontiguous_input_and_gradient():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::-2]
    x = vt.from_numpy(np.ascontiguousarray(a)).t().requires_grad_()
    t = torch.from_numpy(np.ascontiguousarray(a)).t().requires_grad_()
    (vx, ix), (vt_, it) = x.topk(2, 0), t.topk(2, 0)
    np.testing.assert_array_equal(ix.numpy(), it.numpy())
    vx.sum().backward()
    vt_.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_k_out_of_range_is_refused(device):
    for k in (4, -1):
        with pytest.raises(RuntimeError, match="k out of range"):
            vt.ones(3, device=device).topk(k)
    values, indices = vt.tensor(2.5, device=device).topk(1)
    assert values.shape == () and float(values) == 2.5 and int(indices) == 0
