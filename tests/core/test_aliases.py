"""torch's alias names and small compositions (python/vibetensor/torch/_aliases.py) against torch on random
inputs: dense and non-contiguous operands, broadcasting, specials for the inverse hyperbolics (0, tiny, 1, -1,
huge, inf, NaN) within float32 rounding, gradients through them, and the Tensor-method and in-place forms."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

SPECIALS = [0.0, -0.0, 1e-30, 1e-8, -1e-8, 0.5, -0.5, 0.999, 1.0, -1.0, 1.0001, 2.0, 10.0, -3.0, 1e10, 3e38,
            math.inf, -math.inf, math.nan]


def _pair(a):
    return vt.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(a))


def _same(v, t, rtol=3e-6, atol=1e-7):
    if isinstance(t, (tuple, list)):
        assert len(v) == len(t)
        return [_same(a, b, rtol, atol) for a, b in zip(v, t)]
    if isinstance(t, bool):
        assert v == t
        return None
    assert tuple(v.shape) == tuple(t.shape) and str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_allclose(v.float().numpy() if v.dtype != vt.bool else v.numpy(),
                               t.float().numpy() if t.dtype != torch.bool else t.numpy(), rtol=rtol, atol=atol)
    return None


@pytest.mark.parametrize("name", ["asinh", "acosh", "atanh", "arcsinh", "arccosh", "arctanh", "arcsin", "arccos",
                                  "arctan", "fix", "positive", "ravel", "msort", "diagflat", "conj", "real",
                                  "resolve_conj", "resolve_neg", "isposinf", "isneginf", "isreal"])
def test_unary_aliases(name):
    rng = np.random.default_rng(0)
    base = np.concatenate([np.array(SPECIALS, np.float32), (rng.standard_normal(45) * 3).astype(np.float32)])
    a = base.reshape(8, 8)
    for v, t in (_pair(a), (_pair(a)[0].t(), _pair(a)[1].t()), (_pair(a)[0][:, ::2], _pair(a)[1][:, ::2])):
        if name in ("msort", "diagflat"):  # orderings and shapes: on finite values
            v, t = v.nan_to_num(0.0, 1e30, -1e30), t.nan_to_num(0.0, 1e30, -1e30)
        with np.errstate(all="ignore"):
            _same(getattr(vt, name)(v), getattr(torch, name)(t), rtol=2e-6, atol=2e-7)
            if name == "real":  # a property of torch's Tensor
                _same(v.real, t.real)
            else:
                _same(getattr(v, name)(), getattr(t, name)(), rtol=2e-6, atol=2e-7)


def test_inverse_hyperbolic_gradients():
    a = np.array([0.1, 0.5, -0.7, 2.0, 5.0], np.float64)
    for name, shift in (("asinh", 0.0), ("acosh", 1.5), ("atanh", 0.0)):
        x = (np.abs(a) + shift) if name == "acosh" else a / 6
        v, t = _pair(x)
        v.requires_grad_(True), t.requires_grad_(True)
        getattr(vt, name)(v).sum().backward()
        getattr(torch, name)(t).sum().backward()
        np.testing.assert_allclose(v.grad.numpy(), t.grad.numpy(), rtol=1e-10)


def test_binary_and_shape_aliases():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4, 5)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    a[0, 0, 0], b[1, 1] = np.nan, np.nan
    (va, ta), (vb, tb) = _pair(a), _pair(b)
    for name in ("fmax", "fmin", "greater", "greater_equal", "less", "less_equal", "not_equal", "arctan2"):
        _same(getattr(vt, name)(va, vb), getattr(torch, name)(ta, tb))
    _same(vt.inner(va, vb), torch.inner(ta, tb), rtol=1e-5, atol=1e-5)
    _same(vt.inner(va[0, 0], vb[0]), torch.inner(ta[0, 0], tb[0]), rtol=1e-5, atol=1e-5)
    _same(vt.broadcast_to(vb, (3, 4, 5)), torch.broadcast_to(tb, (3, 4, 5)))
    _same(va.swapaxes(0, 2), ta.swapaxes(0, 2))
    _same(vt.swapdims(va, 1, 2), torch.swapdims(ta, 1, 2))
    _same(vt.moveaxis(va, 0, -1), torch.moveaxis(ta, 0, -1))
    _same(va.moveaxis([0, 1], [2, 0]), ta.moveaxis([0, 1], [2, 0]))
    idx = [[0, 59], [7, 13]]
    _same(vt.take(va, vt.tensor(idx)), torch.take(ta, torch.tensor(idx)))
    _same(vt.narrow_copy(va, 1, 1, 2), torch.narrow_copy(ta, 1, 1, 2))
    _same(vt.split_with_sizes(va, [1, 3], 1), torch.split_with_sizes(ta, [1, 3], 1))
    for name, arg in (("hsplit", 2), ("vsplit", [1]), ("dsplit", 5)):
        _same(getattr(vt, name)(va, arg), getattr(torch, name)(ta, arg))
    with pytest.raises(RuntimeError, match="not divisible"):
        vt.hsplit(va, 3)
    _same(va.sum_to_size(4, 1), ta.sum_to_size(4, 1), rtol=1e-5, atol=1e-5)
    _same(va.sum_to_size((1, 4, 5)), ta.sum_to_size((1, 4, 5)), rtol=1e-5, atol=1e-5)
    assert va.is_same_size(va.clone()) and not va.is_same_size(vb)
    assert va.is_signed() and not vt.ones(2, dtype=vt.uint8).is_signed() and not va.is_conj() and not va.is_neg()


def test_scatter_compositions():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    va, ta = _pair(a)
    _same(vt.select_scatter(va, vt.ones(6), 0, 2), torch.select_scatter(ta, torch.ones(6), 0, 2))
    _same(vt.slice_scatter(va, vt.zeros(4, 2), 1, 1, 5, 2), torch.slice_scatter(ta, torch.zeros(4, 2), 1, 1, 5, 2))
    _same(vt.diagonal_scatter(va, vt.full((4,), 7.0), 1), torch.diagonal_scatter(ta, torch.full((4,), 7.0), 1))
    v = va.clone().requires_grad_(True)
    vt.select_scatter(v, vt.ones(6), 0, 2).sum().backward()
    assert v.grad[2].abs().sum().item() == 0 and v.grad[0].sum().item() == 6


def test_inplace_forms():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    for name, args in (("cumsum_", (1,)), ("cumprod_", (0,)), ("clamp_min_", (0.1,)), ("clamp_max_", (0.2,)),
                       ("subtract_", (1.5,)), ("multiply_", (2.0,)), ("divide_", (4.0,)), ("true_divide_", (3.0,)),
                       ("negative_", ()), ("fix_", ()), ("greater_", (0.0,)), ("less_equal_", (0.5,)),
                       ("arctan_", ()), ("asinh_", ()), ("nan_to_num_", ())):
        v, t = _pair(a)
        out = getattr(v, name)(*args)
        getattr(t, name)(*args)
        assert out is v, name
        _same(v, t, rtol=2e-6, atol=2e-7)


def test_statistics_runs_and_tensor_api():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 7)).astype(np.float32)
    va, ta = _pair(a)
    _same(vt.cov(va), torch.cov(ta), rtol=1e-5, atol=1e-6)
    _same(vt.cov(va, correction=0), torch.cov(ta, correction=0), rtol=1e-5, atol=1e-6)
    _same(vt.cov(va[0]), torch.cov(ta[0]), rtol=1e-5, atol=1e-6)
    _same(vt.corrcoef(va), torch.corrcoef(ta), rtol=1e-5, atol=1e-6)
    runs = np.array([3, 3, 1, 1, 1, 2, 3, 3, 0], np.int64)
    vr, tr = _pair(runs)
    _same(vt.unique_consecutive(vr), torch.unique_consecutive(tr))
    _same(vr.reshape(3, 3).unique_consecutive(return_inverse=True, return_counts=True),
          tr.reshape(3, 3).unique_consecutive(return_inverse=True, return_counts=True))
    _same(vt.unique_consecutive(vt.tensor([], dtype=vt.int64)),
          torch.unique_consecutive(torch.tensor([], dtype=torch.int64)))
    for shape, wrap in (((3, 3), False), ((7, 3), False), ((7, 3), True), ((3, 5), True), ((4, 4, 4), False)):
        v, t = vt.zeros(*shape), torch.zeros(*shape)
        _same(v.fill_diagonal_(2.5, wrap), t.fill_diagonal_(2.5, wrap))
    v, t = vt.zeros(6, 4).t(), torch.zeros(6, 4).t()  # a strided matrix
    _same(v.fill_diagonal_(1.0), t.fill_diagonal_(1.0))
    assert va.type() == ta.type() == "torch.FloatTensor" and vr.type() == "torch.LongTensor"
    _same(va.type(vt.float64), ta.type(torch.float64))
    _same(va.type("torch.IntTensor"), ta.type("torch.IntTensor"))
    _same(va.H, ta.H)
    _same(va.mH, ta.mH)
    _same(va.adjoint(), ta.adjoint())
    with pytest.raises(RuntimeError, match="only supported on matrices"):
        va[0].H
    assert not va.is_inference()


def test_broadcasting_gcd_lcm_nextafter():
    assert vt.broadcast_shapes((3, 1), (1, 4), (4,)) == torch.broadcast_shapes((3, 1), (1, 4), (4,)) == (3, 4)
    with pytest.raises(RuntimeError, match="Shape mismatch"):
        vt.broadcast_shapes((3,), (4,))
    va, vb = vt.broadcast_tensors(vt.ones(3, 1), vt.zeros(4))
    assert tuple(va.shape) == tuple(vb.shape) == (3, 4)
    rng = np.random.default_rng(5)
    for dt in (np.int64, np.int32, np.int16):
        a = rng.integers(-60, 60, (5, 6)).astype(dt)
        b = rng.integers(-60, 60, (6,)).astype(dt)
        a[0, :2], b[:2] = 0, 0
        (va, ta), (vb, tb) = _pair(a), _pair(b)
        for name in ("gcd", "lcm"):
            got, want = getattr(vt, name)(va, vb), getattr(torch, name)(ta, tb)
            assert got.dtype == va.dtype
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        v = va.clone()
        v.gcd_(vb)
        np.testing.assert_array_equal(v.numpy(), torch.gcd(ta, tb).numpy())
    for dt in (np.float32, np.float64):
        x = np.array([0.0, -0.0, 1.0, -1.0, 1e-45, 3.0, np.inf, -np.inf, np.nan, 2.0, 5e-324, 1.0], dt)
        y = np.array([1.0, -1.0, 2.0, -2.0, 0.0, 3.0, 0.0, 0.0, 1.0, np.nan, 0.0, 0.5], dt)
        if dt == np.float32:
            x[10] = 0.0
        (vx, tx), (vy, ty) = _pair(x), _pair(y)
        got, want = vt.nextafter(vx, vy).numpy(), torch.nextafter(tx, ty).numpy()
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def _runs_of_slices(rng, shape, dim):
    """Integer arrays whose slices along dim repeat in runs (so that runs of equal slices exist to merge)."""
    a = rng.integers(0, 2, shape)
    idx = np.sort(rng.integers(0, max(shape[dim], 1), shape[dim]))
    return np.take(a, idx, axis=dim)


@pytest.mark.parametrize("shape", [(5, 2), (4, 3, 2), (6,), (1, 4), (0, 3), (2, 0)])
def test_unique_consecutive_along_a_dim_matches_torch(shape):
    """unique_consecutive(dim=): runs of equal slices merged, with the inverse (one index per slice) and the run
    lengths; float inputs and views; torch's errors for a 0-d input, a dim out of range and empty dims."""
    rng = np.random.default_rng(len(shape) * 10 + shape[0])
    for dim in range(-len(shape), len(shape)):
        a = _runs_of_slices(rng, shape, dim) if 0 not in shape else np.zeros(shape, np.int64)
        for arr in (a, a.astype(np.float32) * 0.5):
            ta, va = torch.from_numpy(arr.copy()), vt.from_numpy(arr.copy())
            for ri in (False, True):
                for rc in (False, True):
                    try:
                        t = torch.unique_consecutive(ta, return_inverse=ri, return_counts=rc, dim=dim)
                    except RuntimeError as e:
                        with pytest.raises(RuntimeError, match="0 sized dimensions"):
                            vt.unique_consecutive(va, return_inverse=ri, return_counts=rc, dim=dim)
                        assert "0 sized dimensions" in str(e)
                        continue
                    v = va.unique_consecutive(return_inverse=ri, return_counts=rc, dim=dim)
                    t, v = (t, v) if isinstance(t, tuple) else ((t,), (v,))
                    for x, y in zip(t, v):
                        assert tuple(y.shape) == tuple(x.shape) and str(y.dtype)[-5:] == str(x.dtype)[-5:]
                        np.testing.assert_array_equal(y.numpy(), x.numpy())
    if len(shape) == 2 and 0 not in shape:  # a transposed view
        a = _runs_of_slices(rng, shape[::-1], 1)
        t = torch.unique_consecutive(torch.from_numpy(a).t(), dim=0, return_counts=True)
        v = vt.unique_consecutive(vt.from_numpy(a).t(), dim=0, return_counts=True)
        for x, y in zip(t, v):
            np.testing.assert_array_equal(y.numpy(), x.numpy())
    for lib in (torch, vt):
        with pytest.raises(IndexError, match="no dimensions"):
            lib.unique_consecutive(lib.tensor(5), dim=0)
        with pytest.raises(IndexError, match="Dimension out of range"):
            lib.unique_consecutive(lib.tensor([[1, 2]]), dim=2)
