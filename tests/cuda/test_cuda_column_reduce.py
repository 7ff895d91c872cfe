"""Outer reductions (the kept dim is the fastest) on the GPU: Note [Column vectors] in reduce.cuh gives a thread V
adjacent outputs read as one 16-byte vector where the kept dim is dense, a multiple of V long and aligned; any
other layout keeps one output per thread; a block of the vector path is 32 vector columns x 8 row lanes (Note
[Column tiles]). Both paths, with and without grid splits (rows dealt to the splits in turn, Note [Interleaved
splits]), every reduction kind that runs the outer kernel, against torch on the CPU in float64."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV

pytestmark = CUDA_MARKS

CASES = {  # name: (shape, view, dims)
    "columns": ((300, 64), lambda t: t, 0),                # dense kept dim, 16-byte vectors
    "columns_split": ((20000, 24), lambda t: t, 0),        # few outputs, many rows: split over the grid
    "odd_width": ((129, 67), lambda t: t, 0),              # 67 % V != 0: one output per thread
    "odd_width_split": ((30001, 3), lambda t: t, 0),       # one output per thread, rows dealt to the splits
    "split_odd_rows": ((20011, 8), lambda t: t[1:], 0),    # splits that do not divide the rows
    "misaligned": ((65, 33), lambda t: t[:, 1:], 0),       # rows start 4 bytes past a 16-byte line
    "middle_dim": ((6, 50, 16), lambda t: t, 1),           # kept dims 0 and 2, reduced dim 1
    "two_reduced": ((7, 9, 40), lambda t: t, (0, 1)),      # kept dim 2 after coalescing two reduced dims
    # reduced dims 0 and 1 that cannot coalesce (dim 0's stride is not dim 1's size x stride): each row's offset
    # comes from the reduced dims' offset calculator, not one stride
    "uncoalesced": ((6, 50, 16), lambda t: t[:, :25], (0, 1)),       # vector columns
    "uncoalesced_odd": ((6, 50, 15), lambda t: t[:, :25], (0, 1)),   # one output per thread
    "uncoalesced_split": ((40, 600, 8), lambda t: t[:, 1:599], (0, 1)),  # few outputs: split over the grid
    "transposed": ((48, 96), lambda t: t.t(), 1),          # the reduced dim is the fastest: inner kernel
    # Note [Column tiles]: blocks of 32 vector columns x 8 row lanes
    "tall_narrow": ((8192, 96), lambda t: t, 0),           # a bias gradient's shape: one tile, idle columns
    "many_tiles": ((3, 140000), lambda t: t, 0),           # more tiles than a wave of blocks: the tile loop
    "padded_rows": ((2000, 260), lambda t: t[:, :256], 0),  # row stride 260 elements: vectors, strided rows
}


def _data(shape, dtype, seed):
    a = np.random.default_rng(seed).uniform(-2, 2, size=shape)
    if dtype in ("int32", "int64", "uint8"):
        a = np.round(a * 3 + (3 if dtype == "uint8" else 0))
    return a


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8"])
def test_outer_sum_amax_amin(case, dtype):
    shape, view, dims = CASES[case]
    a = _data(shape, dtype, hash(case) & 0xFFFF)
    x = view(vt.from_numpy(a).to(getattr(vt, dtype)).to(DEV))
    ref = view(torch.from_numpy(a).to(getattr(torch, dtype)).double())
    low = dtype in ("float16", "bfloat16")
    tol = dict(rtol=1e-2, atol=5e-2 * (shape[0] ** 0.5)) if low else dict(rtol=1e-5, atol=1e-5)
    got = x.sum(dims)
    assert got.dtype == (vt.int64 if dtype in ("int32", "int64", "uint8") else getattr(vt, dtype))
    np.testing.assert_allclose(got.cpu().to(vt.float64).numpy(), ref.sum(dims).numpy(), **tol)
    for name in ("amax", "amin"):
        got = getattr(x, name)(dims)
        want = getattr(ref, name)(dims)
        np.testing.assert_array_equal(got.cpu().to(vt.float64).numpy(), want.numpy())


@pytest.mark.parametrize("case", ["columns", "columns_split", "odd_width_split", "misaligned", "middle_dim",
                                  "tall_narrow", "padded_rows", "uncoalesced", "uncoalesced_split"])
def test_outer_mean_prod_norm_float32(case):
    shape, view, dims = CASES[case]
    a = _data(shape, "float32", 3)
    x = view(vt.from_numpy(a.astype(np.float32)).to(DEV))
    ref = view(torch.from_numpy(a))
    np.testing.assert_allclose(x.mean(dims).cpu().numpy(), ref.mean(dims).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.norm(dim=dims).cpu().numpy(), ref.norm(dim=dims).numpy(), rtol=1e-5)
    small = view(vt.from_numpy((1 + a[:40] / 50).astype(np.float32)).to(DEV))
    np.testing.assert_allclose(small.prod(0).cpu().numpy(), view(torch.from_numpy(1 + a[:40] / 50)).prod(0).numpy(),
                               rtol=1e-5)


def test_adjacent_input_columns_land_strided_in_the_output():
    # logical [32, 3, 50] over storage [3, 50, 32]: the input's fastest dim is the output's slowest, so
    # adjacent outputs of one thread are 3 elements apart in the (contiguous) result
    a = _data((3, 50, 32), "float32", 5).astype(np.float32)
    x = vt.from_numpy(a).to(DEV).permute(2, 0, 1)
    got = x.sum(2)
    assert got.shape == (32, 3) and got.is_contiguous()
    np.testing.assert_allclose(got.cpu().numpy(), a.astype(np.float64).transpose(2, 0, 1).sum(2), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(x.amax(2).cpu().numpy(), a.transpose(2, 0, 1).max(2))
