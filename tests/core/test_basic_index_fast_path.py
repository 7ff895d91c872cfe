"""Tensor.__getitem__'s basic indices in C++ (core/bindings/indexing.cpp) against torch and the Python indexer.

Random tuples of ints, slices, None and Ellipsis - in and out of range, with bounds past int64, steps of 0 and
below, too many indices, 0-dim tensors - must give torch's view (values, shape, strides, offset) or torch's
exception type, and exactly what the Python indexer (vibetensor/torch/_indexing.py), which handles everything
else, gives for the same index. A second Ellipsis is refused, as NumPy refuses it.
"""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch import _indexing

SHAPES = [(), (0,), (5,), (4, 0, 3), (3, 4, 5), (2, 3, 1, 4)]


def _bound(rng, n):
    pick = rng.integers(8)
    if pick == 0:
        return None
    if pick == 1:
        return int(rng.choice([2**63 - 1, -2**63, 2**70, -2**70]))
    return int(rng.integers(-n - 3, n + 4))


def _element(rng, n):
    pick = rng.integers(10)
    if pick < 3:
        return int(rng.integers(-n - 2, n + 2))
    if pick < 6:
        step = None if rng.integers(3) == 0 else int(rng.choice([1, 2, 3, 0, -1]))
        return slice(_bound(rng, n), _bound(rng, n), step)
    if pick < 8:
        return None
    return Ellipsis


def _index(rng, ndim):
    items = tuple(_element(rng, 6) for _ in range(rng.integers(0, ndim + 3)))
    return items[0] if len(items) == 1 and rng.integers(2) else items


def _extreme_bounds(index):
    """Slice bounds near or past int64's ends: torch 2.13 (the tests' oracle) truncates them with a warning, a
    behaviour torch has changed between releases, so only the Python indexer, the definition, is compared there."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, slice) and any(b is not None and abs(b) >= 2**62 for b in (i.start, i.stop))
               for i in items)


def _outcome(fn):
    try:
        return "ok", fn()
    except Exception as e:  # noqa: BLE001 - the exception's type is what is compared
        return type(e), None


def _same_view(v, t):
    assert tuple(v.shape) == tuple(t.shape)
    assert tuple(v.stride()) == tuple(t.stride())
    assert v.storage_offset() == t.storage_offset()
    np.testing.assert_array_equal(v.numpy(), t.numpy())


@pytest.mark.parametrize("seed", range(6))
def test_random_basic_indices_match_torch_and_the_python_indexer(seed):
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        base = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
        t, v = torch.from_numpy(base.copy()), vt.from_numpy(base.copy())
        for _ in range(150):
            index = _index(rng, len(shape))
            kind_t, out_t = _outcome(lambda: t[index])
            kind_v, out_v = _outcome(lambda: v[index])
            kind_p, out_p = _outcome(lambda: _indexing.getitem(v, index))
            assert kind_v == kind_p, (shape, index, kind_v, kind_p)
            if isinstance(index, tuple) and sum(i is Ellipsis for i in index) > 1:
                # NumPy's rule, kept: torch lets each Ellipsis skip the unindexed dims again (x[..., 0, ...] of a
                # 3-d x is x[:, :, 0]), up to its own dim-out-of-range errors
                assert kind_v is IndexError
                continue
            if _extreme_bounds(index):
                continue
            # torch raises IndexError or ValueError (x[::0]); RuntimeError where it refuses a bound past int64
            assert (kind_v == "ok") == (kind_t == "ok") or kind_t is RuntimeError, (shape, index, kind_v, kind_t)
            if kind_v == "ok" and kind_t == "ok":
                _same_view(out_v, out_t)
                _same_view(out_v, out_p)


def test_views_alias_and_carry_gradients():
    x = vt.arange(24, dtype=vt.float32).reshape(2, 3, 4).requires_grad_()
    y = x[1, None, ..., 1:3]
    assert y._is_view_of(x) and y.shape == (1, 3, 2)
    y.sum().backward()
    ref = torch.zeros(2, 3, 4)
    ref[1, :, 1:3] = 1
    np.testing.assert_array_equal(x.grad.numpy(), ref.numpy())


def test_whole_tensor_indices_return_the_tensor_itself():
    x = vt.ones(2, 3)
    assert x[()] is x and x[...] is x


@pytest.mark.parametrize("index", [True, np.int64(1), (np.int64(0), slice(None)), [0, 1], (slice(np.int64(1), None),)],
                         ids=["bool", "numpy_int", "numpy_in_tuple", "list", "numpy_bound"])
def test_other_indices_still_go_to_the_python_indexer(index):
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    _same_view(vt.from_numpy(base)[index].contiguous(), torch.from_numpy(base)[index].contiguous())


def _value(rng, view_shape, dtype):
    pick = rng.integers(9)
    if pick == 0:
        return bool(rng.integers(2))
    if pick == 1:
        return float(rng.choice([0.5, -2.75, 1e39, float("inf"), float("nan"), 300.0, -1.5]))
    if pick == 2:
        return int(rng.choice([0, 7, -3, 300, -129, 2**40, 2**70]))
    shape = list(view_shape)
    if pick == 3 and shape:
        shape = shape[1:]  # broadcast along the leading dims
    elif pick == 4:
        shape = [1, 1] + shape  # leading ones beyond the view's rank, dropped as torch drops them
    elif pick == 5:
        shape = shape + [2]  # does not fit
    data = np.asarray(rng.standard_normal(shape) * 4, dtype=np.float64)
    return data, rng.choice(["float32", "float64", "int64", str(dtype).split(".")[1]])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64, torch.int32, torch.uint8, torch.bool])
@pytest.mark.parametrize("seed", range(3))
def test_random_basic_writes_match_torch_and_the_python_indexer(dtype, seed):
    rng = np.random.default_rng(seed)
    vt_dtype = getattr(vt, str(dtype).split(".")[1])
    for shape in SHAPES:
        for _ in range(60):
            index = _index(rng, len(shape))
            try:
                view_shape = torch.zeros(shape)[index].shape
            except Exception:  # noqa: BLE001 - the index is refused; any value will do
                view_shape = ()
            value_t = value_v = _value(rng, view_shape, dtype)
            if isinstance(value_t, tuple):  # a tensor: its data (float64) and dtype
                data, name = value_t
                value_t = torch.from_numpy(data).to(getattr(torch, name))
                value_v = vt.from_numpy(data).to(getattr(vt, name))
            base = np.asarray(np.arange(int(np.prod(shape))).reshape(shape) % 7, dtype=np.float32)
            t = torch.from_numpy(base.copy()).to(dtype)
            v, p = (vt.from_numpy(base.copy()).to(vt_dtype) for _ in range(2))

            def write(x, val, fn=None):
                def go():
                    if fn is None:
                        x[index] = val
                    else:
                        fn(x, index, val)
                return go

            kind_v, _ = _outcome(write(v, value_v))
            kind_p, _ = _outcome(write(p, value_v, _indexing.setitem))
            assert kind_v == kind_p, (shape, dtype, index, value_t, kind_v, kind_p)
            np.testing.assert_array_equal(v.to(vt.float64).numpy(), p.to(vt.float64).numpy())
            if (isinstance(index, tuple) and sum(i is Ellipsis for i in index) > 1) or _extreme_bounds(index):
                continue
            kind_t, _ = _outcome(write(t, value_t))
            if kind_t == "ok" and kind_v == "ok":
                np.testing.assert_array_equal(v.to(vt.float64).numpy(), t.double().numpy(), err_msg=str((index, value_t)))


def test_writes_through_basic_indices_carry_gradients():
    x = vt.zeros(2, 3, requires_grad=True)
    w = vt.ones(3, requires_grad=True)
    y = x * 1
    y[1] = w * 2
    y[:, 0] = 5.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(w.grad.numpy(), [0, 2, 2])


def _tensor_index(rng, shape):
    """A tensor index for x of `shape`: integer (int64, int32, in and out of range, negative, empty, 0-dim, n-dim)
    or a mask (bool or uint8, 0-dim up to more dims than x has, matching and misfitting sizes)."""
    pick = rng.integers(6)
    n = shape[0] if shape else 1
    if pick < 3:
        size = [int(s) for s in rng.integers(0, 4, size=rng.integers(0, 3))]
        data = rng.integers(-n - 1, n + 1, size=size)
        return data, str(rng.choice(["int64", "int32"]))
    mask_ndim = int(rng.integers(0, len(shape) + 2))
    mask_shape = list(shape[:mask_ndim]) + [2] * max(0, mask_ndim - len(shape))
    if mask_shape and rng.integers(4) == 0:
        mask_shape[0] += 1  # misfits
    return rng.integers(0, 2, size=mask_shape), str(rng.choice(["bool", "bool", "uint8"]))


@pytest.mark.parametrize("seed", range(4))
def test_a_tensor_alone_matches_torch_and_the_python_indexer(seed):
    """x[i] for a tensor i is the index op in C++ (indexing.cpp): torch's values and exception types, and
    exactly the Python indexer's result."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        base = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
        t, v = torch.from_numpy(base.copy()), vt.from_numpy(base.copy())
        for _ in range(40):
            data, dtype = _tensor_index(rng, shape)
            ti = torch.from_numpy(np.asarray(data)).to(getattr(torch, dtype))
            vi = vt.from_numpy(np.asarray(data)).to(getattr(vt, dtype))
            kind_t, out_t = _outcome(lambda: t[ti])
            kind_v, out_v = _outcome(lambda: v[vi])
            kind_p, out_p = _outcome(lambda: _indexing.getitem(v, vi))
            assert kind_v == kind_p, (shape, data, dtype, kind_v, kind_p)
            assert (kind_v == "ok") == (kind_t == "ok"), (shape, data, dtype, kind_v, kind_t)
            if kind_v == "ok":
                np.testing.assert_array_equal(out_v.numpy(), out_t.numpy())
                np.testing.assert_array_equal(out_v.numpy(), out_p.numpy())
                assert tuple(out_v.shape) == tuple(out_t.shape)


def test_a_tensor_index_carries_gradients():
    x = vt.arange(12, dtype=vt.float32).reshape(4, 3).requires_grad_()
    x[vt.tensor([0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[:, 0], [2.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_a_0dim_index_tensor_reads_as_torch_reads_it(dtype):
    """A 0-dim integer tensor indexes as its int does: a view that writes through, as torch's does; a 0-dim
    bool or byte tensor is a mask, adding a dim of length 1 or 0."""
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    for value in (0, 1):
        t, v = torch.from_numpy(base.copy()), vt.from_numpy(base.copy())
        ti, vi = torch.tensor(value).to(getattr(torch, dtype)), vt.tensor(value).to(getattr(vt, dtype))
        with np.testing.suppress_warnings() as sup:
            sup.filter(UserWarning)
            yt, yv = t[ti], v[vi]
        assert tuple(yv.shape) == tuple(yt.shape)
        if yt.numel():
            yt.view(-1)[0] = 100.0
            yv.view(-1)[0] = 100.0
        np.testing.assert_array_equal(v.numpy(), t.numpy())  # the write reached the base where torch's did
