"""tril / triu are dispatcher ops with a kernel per backend (core/src/ops/triangle.cpp, cuda/triangle.cu) that
move elements as words of the dtype's size and handle layouts by Note [Triangle layouts]: the batch dims folded
into one stride where they collapse, a contiguous copy (out of place) or a copy_ back (in place) where they do
not. Checked against torch on every dtype, diagonals from far below to far past the matrix (int64's ends
included), empty and one-row/one-column shapes, transposed, strided, offset, expanded and permuted-batch inputs,
the in-place forms writing through views into their base, errors and gradients."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import ALL_DTYPES, assert_same, pair

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
SHAPES = [(4, 4), (3, 7), (7, 3), (1, 5), (5, 1), (2, 3, 4), (2, 2, 3, 5), (0, 3), (3, 0), (2, 0, 4)]
DIAGONALS = [-(2**63), -8, -3, -1, 0, 1, 2, 6, 2**63 - 1]
LAYOUTS = [False, "transpose", "slice", "offset", "expand"]


def _on(p, device):
    return p.v.to(device), p.t


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_and_diagonal(device, dtype, rng):
    for shape in SHAPES:
        x, t = _on(pair(shape, dtype, rng=rng), device)
        for d in DIAGONALS:
            assert_same(vt.tril(x, d), torch.tril(t, d), msg=f"tril {shape} {d}")
            assert_same(x.triu(diagonal=d), t.triu(diagonal=d), msg=f"triu {shape} {d}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(5, 6), (3, 4, 5), (2, 3, 4, 6)], ids=str)
def test_views_out_of_place(device, layout, shape, rng):
    for dtype in ("float32", "int16", "bool", "bfloat16"):
        x, t = _on(pair(shape, dtype, noncontig=layout, rng=rng), device)
        if layout:  # the device copy of a view is contiguous: make the same view on the device
            x = _same_view(x, t, device)
        for d in (-2, 0, 1):
            got = vt.tril(x, d)
            assert_same(got, torch.tril(t, d))
            assert got.is_contiguous()
            assert_same(vt.triu(x, d), torch.triu(t, d))


def _same_view(x, t, device):
    """A view on `device` with t's sizes, strides and offset over a copy of t's storage."""
    base = vt.from_numpy(torch.as_strided(t, (t.untyped_storage().nbytes() // t.element_size(),), (1,), 0)
                         .float().numpy()).to(x.dtype).to(device)
    return base.as_strided(tuple(t.shape), t.stride(), t.storage_offset())


@pytest.mark.parametrize("device", DEVICES)
def test_permuted_batch_dims(device, rng):
    """Batch dims that do not fold into one stride: the out-of-place op reads a contiguous copy."""
    x, t = _on(pair((3, 4, 5, 6), "float32", rng=rng), device)
    xp, tp = x.permute(1, 0, 2, 3), t.permute(1, 0, 2, 3)
    for d in (-1, 0, 2):
        assert_same(xp.tril(d), tp.tril(d))
        assert_same(xp.triu(d), tp.triu(d))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["tril_", "triu_"])
def test_in_place_writes_through_views(device, name, rng):
    for dtype in ("float64", "int8", "float16"):
        x, t = _on(pair((4, 6, 8), dtype, rng=rng), device)
        views = [lambda a: a, lambda a: a.transpose(-1, -2), lambda a: a[:, 1:, ::2], lambda a: a[1:],
                 lambda a: a.permute(1, 0, 2)[:, :, 1:7]]  # the last: batch dims that do not fold
        for k, view in enumerate(views):
            for d in (-2, 0, 3):
                xa, ta = x.clone(), t.clone()
                got = getattr(view(xa), name)(d)
                want = getattr(view(ta), name)(d)
                assert_same(got, want, msg=f"view {k} diagonal {d}")
                assert_same(xa, ta, msg=f"base of view {k} diagonal {d}")


@pytest.mark.parametrize("device", DEVICES)
def test_errors_as_torch(device):
    for name in ("tril", "triu"):
        for shape in ((), (4,)):
            with pytest.raises(RuntimeError, match=f"{name}: input tensor must have at least 2 dimensions"):
                getattr(vt, name)(vt.ones(shape, device=device))
        with pytest.raises(TypeError, match="diagonal"):
            getattr(vt, name)(vt.ones(2, 2, device=device), 1.5)
    # An expanded tensor written in place: torch's tril_ writes through the aliases and leaves a matrix that is
    # not triangular ([[1, 0, 0]] * 3); ours refuses it, as torch's other in-place ops do.
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        vt.ones(3, device=device).expand(3, 3).tril_()


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_keep_the_triangle(device, rng):
    a = rng.standard_normal((2, 4, 5))
    g = rng.standard_normal((2, 4, 5))
    for name, d in (("tril", 0), ("triu", 1), ("tril", -2)):
        x = vt.from_numpy(a).to(device).requires_grad_()
        t = torch.from_numpy(a).requires_grad_()
        y, w = getattr(vt, name)(x * 2, d), getattr(torch, name)(t * 2, d)
        assert y.grad_fn.name() == w.grad_fn.name()
        y.backward(vt.from_numpy(g).to(device))
        w.backward(torch.from_numpy(g))
        assert_same(x.grad, t.grad)
        np.testing.assert_array_equal(x.grad.cpu().numpy() == 0, t.grad.numpy() == 0)
