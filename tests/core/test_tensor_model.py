"""The tensor model: dtypes, metadata, storage sharing, numpy interop, conversions, version counter."""
import gc
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import (
    ALL_DTYPES, FLOAT_DTYPES, INT_DTYPES, NUMPY_DTYPES, assert_layout_same, assert_same, check_op,
    dtype_name, np_dtype, pair, pair_from_numpy, random_array, torch_dtype, vt_dtype,
)

# ------------------------------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("name", ALL_DTYPES)
def test_dtype_attributes(name):
    d, td = vt_dtype(name), torch_dtype(name)
    assert d.itemsize == td.itemsize
    assert d.is_floating_point == td.is_floating_point
    assert d == vt_dtype(name)
    assert name in str(d) and name in repr(d)
    hash(d)  # usable as a dict key
    assert {d: 1}[vt_dtype(name)] == 1


@pytest.mark.parametrize("alias,name", [("float", "float32"), ("double", "float64"), ("half", "float16"),
                                        ("long", "int64"), ("int", "int32")])
def test_dtype_aliases(alias, name):
    assert getattr(vt, alias) == vt_dtype(name)
    assert getattr(vt, alias) is vt_dtype(name) or getattr(vt, alias) == vt_dtype(name)


def test_dtypes_are_distinct():
    ds = [vt_dtype(n) for n in ALL_DTYPES]
    for i, a in enumerate(ds):
        for j, b in enumerate(ds):
            assert (a == b) == (i == j), (ALL_DTYPES[i], ALL_DTYPES[j])


@pytest.mark.parametrize("name", ALL_DTYPES)
def test_tensor_dtype_and_element_size(name, rng):
    p = pair((3, 4), name, rng=rng)
    assert p.v.dtype == vt_dtype(name)
    assert p.v.element_size() == torch_dtype(name).itemsize
    if hasattr(p.v, "is_floating_point"):
        assert p.v.is_floating_point() == p.t.is_floating_point()


# ------------------------------------------------------------------------------------------ metadata


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 1, 5), (0, 4), (2, 0, 3), (4, 6)], ids=str)
def test_metadata_matches_torch(shape, rng):
    p = pair(shape, "float32", rng=rng)
    v, t = p
    assert tuple(v.shape) == tuple(t.shape)
    assert tuple(v.size()) == tuple(t.size())
    assert v.dim() == t.dim() and v.ndim == t.ndim
    assert v.numel() == t.numel()
    assert tuple(v.stride()) == tuple(t.stride())
    assert v.storage_offset() == 0
    assert v.is_contiguous()
    for d in range(-t.dim(), t.dim()):
        assert v.size(d) == t.size(d)
        assert v.stride(d) == t.stride(d)
        assert v.shape[d] == t.shape[d]
    assert str(v.device) == "cpu"
    assert v.get_device() == t.get_device() == -1


def test_shape_is_tuple_like():
    v = vt.zeros(2, 3, 4)
    s = v.shape
    assert len(s) == 3 and list(s) == [2, 3, 4] and s[-1] == 4
    assert s == (2, 3, 4)
    assert tuple(s[1:]) == (3, 4)
    assert v.size() == (2, 3, 4)


def test_device():
    v = vt.zeros(3)
    assert str(v.device) == "cpu"
    assert v.device.type == "cpu"
    w = vt.zeros(3, device="cpu")
    assert str(w.device) == "cpu"


@pytest.mark.parametrize("kind", ["transpose", "slice", "expand", "offset"])
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (6,)], ids=str)
def test_noncontig_metadata(kind, shape, rng):
    v, t = pair(shape, "float64", noncontig=kind, rng=rng)
    assert_layout_same(v, t)
    assert_same(v, t)


def test_data_ptr_of_view_reflects_offset():
    base = vt.arange(24, dtype=vt.float32).view(4, 6)
    view = base[1:, 2:]
    assert view.storage_offset() == 8
    assert view.data_ptr() == base.data_ptr() + 8 * 4
    sel = base.select(1, 3)
    assert sel.data_ptr() == base.data_ptr() + 3 * 4


# -------------------------------------------------------------------------------- numpy interop


@pytest.mark.parametrize("name", NUMPY_DTYPES)
def test_from_numpy_is_zero_copy(name, rng):
    arr = random_array((4, 5), name, rng)
    t = vt.from_numpy(arr)
    assert t.dtype == vt_dtype(name)
    assert tuple(t.shape) == arr.shape
    assert t.data_ptr() == arr.ctypes.data
    assert_same(t, torch.from_numpy(arr))
    # writes through numpy are visible in the tensor ...
    arr[1, 2] = arr[0, 0] if name == "bool" else np_dtype(name)(3)
    assert t[1, 2].item() == arr[1, 2].item()
    # ... and writes through the tensor are visible in numpy
    t.fill_(1)
    assert (arr == 1).all()


@pytest.mark.parametrize("slicer", [lambda a: a[::2], lambda a: a.T, lambda a: a[1:, ::3], lambda a: a[:, 1],
                                    lambda a: a[2:3]], ids=["step", "T", "offset_step", "column", "row"])
def test_from_numpy_strided(slicer, rng):
    base = random_array((6, 7), "float32", rng)
    arr = slicer(base)
    v, t = vt.from_numpy(arr), torch.from_numpy(arr)
    assert_layout_same(v, t)
    assert_same(v, t)
    assert v.data_ptr() == arr.ctypes.data
    v.fill_(5.0)
    assert (arr == 5.0).all()


def test_from_numpy_keeps_array_alive():
    t = vt.from_numpy(np.arange(1000, dtype=np.int64) * 3)
    gc.collect()
    _ = [np.ones(1000) for _ in range(10)]
    assert t[999].item() == 2997
    assert t.sum().item() == 3 * 999 * 1000 // 2


def test_from_numpy_zero_dim_and_empty():
    v = vt.from_numpy(np.array(2.5, dtype=np.float64))
    assert tuple(v.shape) == () and v.item() == 2.5
    e = vt.from_numpy(np.zeros((0, 3), dtype=np.int32))
    assert tuple(e.shape) == (0, 3) and e.numel() == 0


def test_from_numpy_negative_strides_raises_like_torch():
    arr = np.arange(6.0)[::-1]
    check_op(lambda m, a: m.from_numpy(a), arr)


def test_from_numpy_unsupported_dtype_raises_like_torch():
    arr = np.array(["a", "b"])
    check_op(lambda m, a: m.from_numpy(a), arr)


@pytest.mark.parametrize("name", NUMPY_DTYPES)
def test_numpy_is_zero_copy(name, rng):
    v, t = pair((3, 4), name, rng=rng)
    a = v.numpy()
    assert a.dtype == np.dtype(np_dtype(name))
    assert a.shape == (3, 4)
    assert a.ctypes.data == v.data_ptr()
    np.testing.assert_array_equal(a, t.numpy())
    a[...] = np_dtype(name)(1)
    assert_same(v, torch.ones(3, 4, dtype=torch_dtype(name)))


@pytest.mark.parametrize("kind", ["transpose", "slice", "expand", "offset"])
def test_numpy_of_noncontiguous(kind, rng):
    v, t = pair((4, 5), "float32", noncontig=kind, rng=rng)
    a, b = v.numpy(), t.numpy()
    assert a.shape == b.shape and a.strides == b.strides
    np.testing.assert_array_equal(a, b)
    assert a.ctypes.data == v.data_ptr()


def test_numpy_bfloat16_raises_like_torch():
    p = pair((3,), "bfloat16", seed=0)
    check_op(lambda m, x: x.numpy(), p)


def test_numpy_keeps_tensor_alive():
    a = vt.arange(1000, dtype=vt.int64).numpy()
    gc.collect()
    _ = [vt.ones(1000) for _ in range(10)]
    assert a[999] == 999 and a.sum() == 999 * 1000 // 2


# ---------------------------------------------------------------------------- tolist / item / tensor()


@pytest.mark.parametrize("name", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0, 2), (2, 1, 2)], ids=str)
def test_tolist_and_item(name, shape, rng):
    p = pair(shape, name, rng=rng)
    check_op(lambda m, x: x.tolist(), p)
    check_op(lambda m, x: x.item(), p)
    if p.t.numel() == 1:
        check_op(lambda m, x: x.reshape(()).item(), p)


@pytest.mark.parametrize("name", ALL_DTYPES)
def test_tolist_noncontiguous(name, rng):
    p = pair((3, 4), name, noncontig="transpose", rng=rng)
    check_op(lambda m, x: x.tolist(), p)
    p = pair((3, 4), name, noncontig="slice", rng=rng)
    check_op(lambda m, x: x.tolist(), p)


@pytest.mark.parametrize("data", [
    [1, 2, 3], [1.0, 2.5], [True, False], [1, 2.5], [[1, 2], [3, 4]], 3, 2.5, True, [], [[]],
    [[1.5], [2.0]], [True, 2], [[True, 1.5]], [[[1], [2]], [[3], [4]]], -7, 2**40, [0.1, 1e30],
], ids=repr)
def test_tensor_from_python_data(data):
    check_op(lambda m, d: m.tensor(d), data)


@pytest.mark.parametrize("name", ALL_DTYPES)
@pytest.mark.parametrize("data", [[1, 0, 3], [[1.0, 2.0], [0.0, -1.0]], 2, [True, False]], ids=repr)
def test_tensor_with_dtype(name, data):
    if name == "uint8" and data == [[1.0, 2.0], [0.0, -1.0]]:
        data = [[1.0, 2.0], [0.0, 5.0]]  # negative float -> uint8 is implementation-defined
    check_op(lambda m, d: m.tensor(d, dtype=getattr(m, name)), data)


@pytest.mark.parametrize("data", [[[1], [1, 2]], [[1, 2], 3]], ids=repr)
def test_tensor_ragged_raises_like_torch(data):
    check_op(lambda m, d: m.tensor(d), data)


@pytest.mark.parametrize("name", NUMPY_DTYPES)
def test_tensor_from_numpy_copies(name, rng):
    arr = random_array((3, 4), name, rng)
    v = vt.tensor(arr)
    assert v.dtype == vt_dtype(name)
    assert v.data_ptr() != arr.ctypes.data
    np.testing.assert_array_equal(v.numpy(), arr)
    before = arr.copy()
    arr[...] = np_dtype(name)(0) if name != "bool" else np.logical_not(arr)
    np.testing.assert_array_equal(v.numpy(), before)


def test_tensor_from_tensor_copies():
    a = vt.arange(6, dtype=vt.float32)
    b = vt.tensor(a.tolist())
    assert b.data_ptr() != a.data_ptr()
    assert_same(b, torch.arange(6, dtype=torch.float32))


@pytest.mark.parametrize("name", ALL_DTYPES)
def test_python_number_protocols(name, rng):
    p = pair((1,), name, rng=rng, low=1, high=5)
    check_op(lambda m, x: bool(x), p)
    check_op(lambda m, x: int(x), p)
    check_op(lambda m, x: float(x), p)
    if name in INT_DTYPES or name == "bool":
        check_op(lambda m, x: [10, 20, 30, 40, 50, 60][x], p)  # __index__


def test_bool_of_multi_element_raises_like_torch():
    check_op(lambda m: bool(m.ones(2)))
    check_op(lambda m: m.ones(2, 3).item())
    check_op(lambda m: bool(m.zeros(0)))


# ------------------------------------------------------------------------------------ conversions


def _conversion_values(src, dst, rng):
    """Values representable after conversion (no negative -> unsigned, no overflow, no nan -> int)."""
    if src == "bool":
        return random_array((5, 7), "bool", rng)
    lo, hi = -100, 100
    if src == "uint8" or dst == "uint8":
        lo = 0
    if src in ("int8",) or dst == "int8":
        lo, hi = max(lo, -100), min(hi, 100)
    if src in FLOAT_DTYPES:
        return random_array((5, 7), src, rng, low=lo, high=hi)
    return random_array((5, 7), src, rng, low=lo, high=hi)


@pytest.mark.parametrize("dst", ALL_DTYPES)
@pytest.mark.parametrize("src", ALL_DTYPES)
def test_to_dtype_all_pairs(src, dst, rng):
    arr = _conversion_values(src, dst, rng)
    p = pair_from_numpy(arr, src)
    check_op(lambda m, x: x.to(getattr(m, dst)), p)
    check_op(lambda m, x: x.transpose(0, 1).to(getattr(m, dst)), p)


@pytest.mark.parametrize("src", FLOAT_DTYPES)
def test_to_dtype_special_float_values(src):
    vals = [0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.7, 65504.0, 1e-8, math.inf, -math.inf, math.nan]
    p = pair_from_numpy(np.array(vals, dtype=np.float64), src)
    for dst in FLOAT_DTYPES + ["bool"]:
        check_op(lambda m, x: x.to(getattr(m, dst)), p, msg=f"{src}->{dst}: ")


def test_float_rounding_to_half_types_matches_torch(rng):
    # round-to-nearest-even when narrowing float32/float64 -> float16/bfloat16
    arr = rng.standard_normal(10_000) * np.exp(rng.uniform(-20, 20, 10_000))
    for src in ("float32", "float64"):
        p = pair_from_numpy(arr, src)
        for dst in ("float16", "bfloat16"):
            r = check_op(lambda m, x: x.to(getattr(m, dst)), p, rtol=0, atol=0)


@pytest.mark.parametrize("method,name", [("float", "float32"), ("double", "float64"), ("half", "float16"),
                                         ("bfloat16", "bfloat16"), ("int", "int32"), ("long", "int64"),
                                         ("bool", "bool")])
@pytest.mark.parametrize("src", ["int32", "float32", "bool"])
def test_conversion_methods(method, name, src, rng):
    p = pair((3, 4), src, rng=rng)
    r = check_op(lambda m, x: getattr(x, method)(), p)
    assert dtype_name(r[0].dtype) == name


@pytest.mark.parametrize("name", ALL_DTYPES)
def test_to_same_dtype_aliases(name, rng):
    v, _ = pair((3,), name, rng=rng)
    w = v.to(v.dtype)
    assert w.data_ptr() == v.data_ptr()


def test_to_keyword_dtype():
    v = vt.ones(3)
    assert v.to(dtype=vt.float64).dtype == vt.float64


# ------------------------------------------------------------------------------ storage sharing


def test_views_alias_storage():
    v = vt.zeros(4, 6)
    views = [v.view(24), v[1], v[:, 2], v.t(), v.reshape(6, 4), v.transpose(0, 1), v.narrow(1, 1, 3),
             v.unsqueeze(0), v.flatten(), v.permute(1, 0), v.select(0, 2)]
    for w in views:
        w.add_(1)
    t = torch.zeros(4, 6)
    tviews = [t.view(24), t[1], t[:, 2], t.t(), t.reshape(6, 4), t.transpose(0, 1), t.narrow(1, 1, 3),
              t.unsqueeze(0), t.flatten(), t.permute(1, 0), t.select(0, 2)]
    for w in tviews:
        w.add_(1)
    assert_same(v, t)
    for w, tw in zip(views, tviews):
        assert_same(w, tw)


def test_clone_does_not_alias(rng):
    v, t = pair((3, 4), "float32", rng=rng)
    c = v.clone()
    assert c.data_ptr() != v.data_ptr()
    c.fill_(0)
    assert_same(v, t)


@pytest.mark.parametrize("kind", ["transpose", "slice", "expand", "offset"])
def test_clone_noncontiguous(kind, rng):
    p = pair((4, 5), "float32", noncontig=kind, rng=rng)
    check_op(lambda m, x: x.clone(), p)


def test_contiguous():
    v = vt.arange(12, dtype=vt.float32).view(3, 4)
    assert v.contiguous().data_ptr() == v.data_ptr()
    tv = v.t()
    c = tv.contiguous()
    assert c.is_contiguous() and c.data_ptr() != v.data_ptr()
    assert_same(c, torch.arange(12, dtype=torch.float32).view(3, 4).t().contiguous())
    assert tuple(c.stride()) == (3, 1)


def test_reshape_view_or_copy():
    v = vt.arange(12, dtype=vt.float32).view(3, 4)
    r = v.reshape(4, 3)
    assert r.data_ptr() == v.data_ptr()
    r2 = v.t().reshape(12)  # not viewable -> copy
    r2.fill_(-1)
    assert_same(v, torch.arange(12, dtype=torch.float32).view(3, 4))


def test_view_keeps_base_alive():
    base = vt.arange(10000, dtype=vt.int64)
    view = base[9000:]
    del base
    gc.collect()
    _ = [vt.ones(10000, dtype=vt.int64) for _ in range(5)]
    assert view[0].item() == 9000 and view[-1].item() == 9999


# --------------------------------------------------------------------------------- in-place basics


@pytest.mark.parametrize("name", ALL_DTYPES)
@pytest.mark.parametrize("kind", [False, "transpose", "slice", "offset"])
def test_fill_zero(name, kind, rng):
    p = pair((4, 5), name, noncontig=kind, rng=rng)
    check_op(lambda m, x: (x.fill_(1), x)[1], p)
    check_op(lambda m, x: (x.fill_(True), x)[1], p)
    check_op(lambda m, x: (x.zero_(), x)[1], p)
    if name in FLOAT_DTYPES:
        check_op(lambda m, x: (x.fill_(2.5), x)[1], p)
        check_op(lambda m, x: (x.fill_(math.nan), x)[1], p)


def test_fill_only_touches_view():
    v = vt.zeros(4, 6)
    t = torch.zeros(4, 6)
    v[1:3, ::2].fill_(7)
    t[1:3, ::2].fill_(7)
    v[:, 5].zero_()
    t[:, 5].zero_()
    assert_same(v, t)


def test_fill_with_zero_dim_tensor():
    check_op(lambda m: m.zeros(3).fill_(m.tensor(4.5)))


@pytest.mark.parametrize("src", ALL_DTYPES)
@pytest.mark.parametrize("dst", ALL_DTYPES)
def test_copy_between_dtypes(src, dst, rng):
    arr = _conversion_values(src, dst, rng)
    s = pair_from_numpy(arr, src)
    d = pair((5, 7), dst, rng=rng)
    check_op(lambda m, x, y: (x.copy_(y), x)[1], d, s)


@pytest.mark.parametrize("src_shape", [(7,), (1, 7), (5, 1), ()], ids=str)
@pytest.mark.parametrize("dst_kind", [False, "transpose", "slice"])
def test_copy_broadcast_and_noncontig(src_shape, dst_kind, rng):
    s = pair(src_shape, "float32", rng=rng)
    d = pair((5, 7), "float32", noncontig=dst_kind, rng=rng)
    check_op(lambda m, x, y: (x.copy_(y), x)[1], d, s)


def test_copy_overlapping_self():
    v = vt.arange(10, dtype=vt.float32)
    t = torch.arange(10, dtype=torch.float32)
    v[2:].copy_(v[2:].clone())
    t[2:].copy_(t[2:].clone())
    assert_same(v, t)


def test_copy_shape_mismatch_raises_like_torch():
    check_op(lambda m: m.zeros(3, 4).copy_(m.ones(4, 3)))
    check_op(lambda m: m.zeros(3, 4).copy_(m.ones(2, 4)))


def test_inplace_returns_self():
    v = vt.zeros(3)
    assert v.add_(1) is v
    assert v.fill_(2) is v
    assert v.zero_() is v
    assert v.copy_(vt.ones(3)) is v
    assert v.mul_(2).add_(1) is v
    assert_same(v, torch.full((3,), 3.0))


# ---------------------------------------------------------------------------------- T and friends


@pytest.mark.parametrize("shape", [(3, 4), (5,), ()], ids=str)
def test_T_property(shape, rng):
    p = pair(shape, "float32", rng=rng)
    r = check_op(lambda m, x: x.T, p)
    assert_layout_same(r[0], r[1])


# ----------------------------------------------------------------------------------- version counter


def _has_version():
    return hasattr(vt.zeros(1), "_version")


@pytest.mark.skipif(not _has_version(), reason="vt.Tensor._version not exposed")
def test_version_counter():
    v = vt.zeros(4, 4)
    v0 = v._version
    _ = v + 1
    _ = v.sum()
    _ = v.clone()
    assert v._version == v0, "out-of-place ops must not bump the version"
    v.add_(1)
    v1 = v._version
    assert v1 > v0
    view = v[1]
    assert view._version == v1, "a view shares its base's version counter"
    view.mul_(2)
    assert v._version > v1 and view._version == v._version
    v2 = v._version
    v[0, 0] = 5.0
    assert v._version > v2, "__setitem__ bumps the version"
    v3 = v._version
    v.t().fill_(0)
    assert v._version > v3
    v4 = v._version
    v.copy_(vt.ones(4, 4))
    assert v._version > v4
    c = v.clone()
    v5 = v._version
    c.add_(1)
    assert v._version == v5, "a clone has its own version counter"


@pytest.mark.skipif(not _has_version(), reason="vt.Tensor._version not exposed")
def test_version_counter_shared_with_numpy_view():
    a = np.zeros(4, dtype=np.float32)
    v = vt.from_numpy(a)
    s = v[1:]
    before = v._version
    s.zero_()
    assert v._version > before
