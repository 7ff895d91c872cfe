"""The new ops on the GPU against torch on the GPU: gather, scatter / scatter_add / scatter_reduce (atomics with
duplicate indices), index_select, sort / argsort / topk (the segmented radix sort: NaN, -0.0, ties, every
dtype), multinomial, im2col / col2im through F.unfold / F.fold, conv2d and the poolings, with gradients for
gather, sort and conv2d, and out-of-range indices raising a RuntimeError (at the next synchronization) instead
of a device-side assert.

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_surface.py -q -p no:cacheprovider
Tests of the tests on the CPU: VT_CUDA_TEST_DEVICE=cpu PYTHONPATH=python python -m pytest tests/cuda/test_cuda_surface.py
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV, Failures, dcheck, dpair, dpair_np
from helpers import ALL_DTYPES, FLOAT_DTYPES, NUMERIC_DTYPES, Pair

pytestmark = CUDA_MARKS


def didx(arr):
    return dpair_np(np.asarray(arr, dtype=np.int64))


def test_gather_scatter_all_dtypes(rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        with f.case(dtype):
            x = dpair((5, 7), dtype, rng=rng, noncontig="transpose")
            i = didx(rng.integers(0, 5, size=(6, 7)))
            dcheck(lambda m, a, j: a.gather(0, j), x, i)
            src = dpair((6, 7), dtype, rng=rng)
            perm = didx(np.stack([rng.permutation(5) for _ in range(7)], 1))
            dcheck(lambda m, a, j, s: a.scatter(0, j, s), x, perm, src)
            if dtype != "bool":
                tol = dict(rtol=2e-2, atol=2e-2) if dtype in ("float16", "bfloat16") else {}
                dcheck(lambda m, a, j, s: a.scatter_add(0, j, s), x, i, src, **tol)
    f.raise_if_any()


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "int64", "uint8"])
def test_scatter_reduce_atomics(reduce, dtype, rng):
    x = dpair((4, 9), dtype, rng=rng, low=1, high=3)
    src = dpair((12, 9), dtype, rng=rng, low=1, high=3)
    i = didx(rng.integers(0, 3, size=(12, 9)))
    tol = dict(rtol=1e-2, atol=1e-2) if dtype == "float16" else dict(rtol=1e-5)
    for include_self in (True, False):
        dcheck(lambda m, a, j, s: a.scatter_reduce(0, j, s, reduce, include_self=include_self), x, i, src, **tol)


def test_index_select_masked_select_and_bad_indices(rng):
    x = dpair((6, 5), "float32", rng=rng, noncontig="transpose")
    dcheck(lambda m, a, j: a.index_select(0, j), x, didx(rng.integers(0, 6, size=9)))
    mask = dpair_np(rng.random((6, 5)) < 0.4)
    dcheck(lambda m, a, k: a.masked_select(k), x, mask)
    # Reported at the next synchronization (Note [Deferred kernel errors]): test_cuda_kernel_errors.py
    with pytest.raises(RuntimeError, match="out of bounds"):
        x.v.gather(1, vt.tensor([[7]], device=DEV))
        vt.cuda.synchronize()
    with pytest.raises(RuntimeError, match="out of bounds"):
        x.v.clone().scatter_(1, vt.tensor([[-1]], device=DEV), vt.ones(1, 1, device=DEV))
        vt.cuda.synchronize()
    assert float(x.v.sum()) == pytest.approx(float(x.t.sum()), rel=1e-5)  # the device is still usable


def test_sort_topk_every_dtype(rng):
    f = Failures()
    for dtype in NUMERIC_DTYPES:
        for descending in (False, True):
            with f.case(f"{dtype} descending={descending}"):
                x = dpair((7, 33), dtype, rng=rng, low=0, high=5, noncontig="transpose")
                if dtype in FLOAT_DTYPES:
                    x = Pair(x.v.round(), x.t.round())  # ties
                dcheck(lambda m, a: tuple(m.sort(a, dim=0, descending=descending, stable=True)), x)
                dcheck(lambda m, a: a.argsort(dim=-1, descending=descending, stable=True), x)
    vals = np.array([3.0, np.nan, -np.inf, 0.0, -0.0, np.inf, -1.0, np.nan] * 3, dtype=np.float32)
    with f.case("special values"):
        dcheck(lambda m, a: tuple(m.sort(a, stable=True)), dpair_np(vals))
        dcheck(lambda m, a: tuple(m.sort(a, descending=True, stable=True)), dpair_np(vals))
    with f.case("topk"):
        x = dpair((4, 1000), "float32", rng=rng)
        dcheck(lambda m, a: tuple(m.topk(a, 10)), x)
        dcheck(lambda m, a: tuple(m.topk(a, 3, 0, largest=False)), x)
    f.raise_if_any()


def test_multinomial_on_device():
    vt.manual_seed(0)
    p = vt.tensor([[0.1, 0.0, 0.6, 0.3]], device=DEV)
    draws = vt.multinomial(p, 4000, replacement=True)
    assert draws.device == p.device and draws.dtype == vt.int64
    np.testing.assert_allclose(np.bincount(draws.cpu().numpy()[0], minlength=4) / 4000, [0.1, 0, 0.6, 0.3],
                               atol=0.03)
    assert sorted(vt.multinomial(p, 3).cpu().tolist()[0]) == [0, 2, 3]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_unfold_fold_conv_pool(dtype, rng):
    x = dpair((2, 4, 9, 8), dtype, rng=rng, noncontig="transpose")
    w = dpair((6, 2, 3, 3), dtype, rng=rng)
    F = lambda m: m.nn.functional  # noqa: E731
    tol = dict(rtol=2e-2, atol=5e-2) if dtype in ("float16", "bfloat16") else dict(rtol=1e-4, atol=1e-4)
    cols = dcheck(lambda m, a: F(m).unfold(a, (3, 2), dilation=(1, 2), padding=1, stride=(2, 1)), x)[1]
    c = dpair(tuple(cols.shape), dtype, rng=rng)
    dcheck(lambda m, a: F(m).fold(a, (9, 8), (3, 2), dilation=(1, 2), padding=1, stride=(2, 1)), c, **tol)
    dcheck(lambda m, a, b: F(m).conv2d(a, b, stride=2, padding=1, groups=2), x, w, **tol)
    dcheck(lambda m, a: F(m).max_pool2d(a, 3, 2, 1, ceil_mode=True), x)
    dcheck(lambda m, a: F(m).avg_pool2d(a, 3, 2, 1, count_include_pad=False), x, **tol)


def test_gradients_on_device(rng):
    base = rng.standard_normal((2, 3, 7, 6))
    wv = rng.standard_normal((4, 3, 3, 3))
    outs = []
    for m in (vt, torch):
        x = m.tensor(base, device=DEV, requires_grad=True)
        w = m.tensor(wv, device=DEV, requires_grad=True)
        y = m.nn.functional.conv2d(x, w, padding=1)
        y = m.sort(y.flatten(1), 1)[0][:, :40].gather(1, m.tensor([[0, 5, 5, 39]] * 2, device=DEV))
        y = m.nn.functional.max_pool2d(x, 2).sum() + (y * y).sum()
        y.backward()
        outs.append([x.grad.cpu().numpy(), w.grad.cpu().numpy()])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
