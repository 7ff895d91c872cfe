"""DLPack interop with torch and numpy: zero-copy both ways, strides, lifetimes, (versioned) capsules."""
import ctypes
import gc

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import ALL_DTYPES, NUMPY_DTYPES, assert_same, dtype_name, pair, random_array

_PyCapsule_GetName = ctypes.pythonapi.PyCapsule_GetName
_PyCapsule_GetName.restype = ctypes.c_char_p
_PyCapsule_GetName.argtypes = [ctypes.py_object]
_PyCapsule_IsValid = ctypes.pythonapi.PyCapsule_IsValid
_PyCapsule_IsValid.restype = ctypes.c_int
_PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]


def assert_shape_strides(a, b):
    """Shape and strides agree (storage offsets need not survive DLPack: the data pointer absorbs them)."""
    assert tuple(a.shape) == tuple(b.shape)
    assert tuple(a.stride()) == tuple(b.stride()), (tuple(a.stride()), tuple(b.stride()))


def capsule_name(cap) -> str:
    return _PyCapsule_GetName(cap).decode()


SHAPES = [(), (0,), (7,), (3, 1, 5), (0, 4), (4, 6)]

# ------------------------------------------------------------------------------------------ vt -> torch


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_vt_to_torch_zero_copy(dtype, shape, rng):
    v, t = pair(shape, dtype, rng=rng)
    out = torch.from_dlpack(v)
    assert out.dtype == t.dtype and tuple(out.shape) == tuple(t.shape)
    assert out.device.type == "cpu"
    assert torch.equal(out, t)
    if v.numel():
        assert out.data_ptr() == v.data_ptr()
        out.view(-1)[0] = 1 if dtype != "bool" else (not bool(out.view(-1)[0]))
        assert_same(v, out)  # the write is visible on the vt side


@pytest.mark.parametrize("kind", ["transpose", "slice", "expand", "offset"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int16", "bool"])
def test_vt_to_torch_strided(dtype, kind, rng):
    v, t = pair((4, 6), dtype, noncontig=kind, rng=rng)
    out = torch.from_dlpack(v)
    assert_shape_strides(v, out)
    assert torch.equal(out, t)
    assert out.data_ptr() == v.data_ptr()


def test_vt_to_torch_keeps_memory_alive():
    v = vt.arange(100_000, dtype=vt.int64)
    out = torch.from_dlpack(v)
    del v
    gc.collect()
    _ = [vt.ones(100_000, dtype=vt.int64) for _ in range(5)]
    assert out[99_999].item() == 99_999 and out.sum().item() == 99_999 * 100_000 // 2


def test_vt_capsule_to_torch():
    v = vt.arange(6, dtype=vt.float32).view(2, 3)
    cap = v.__dlpack__()
    assert capsule_name(cap) == "dltensor"
    out = torch.from_dlpack(cap)
    assert out.data_ptr() == v.data_ptr()
    assert torch.equal(out, torch.arange(6, dtype=torch.float32).view(2, 3))
    assert capsule_name(cap) == "used_dltensor"


def test_dlpack_device():
    v = vt.zeros(3)
    dev = v.__dlpack_device__()
    assert tuple(int(d) for d in dev) == (1, 0)  # (kDLCPU, 0)


def test_dlpack_stream_none_accepted():
    v = vt.zeros(3)
    cap = v.__dlpack__(stream=None)
    assert capsule_name(cap) == "dltensor"


# ------------------------------------------------------------------------------------------ torch -> vt


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_torch_to_vt_zero_copy(dtype, shape, rng):
    v0, t = pair(shape, dtype, rng=rng)
    v = vt.from_dlpack(t)
    assert dtype_name(v.dtype) == dtype
    assert_same(v, t)
    if t.numel():
        assert v.data_ptr() == t.data_ptr()
        t.view(-1)[-1] = 0
        assert_same(v, t)  # torch's write shows on the vt side


@pytest.mark.parametrize("kind", ["transpose", "slice", "expand", "offset"])
def test_torch_to_vt_strided(kind, rng):
    v0, t = pair((5, 6), "float64", noncontig=kind, rng=rng)
    v = vt.from_dlpack(t)
    assert_shape_strides(v, t)
    assert_same(v, t)
    assert v.data_ptr() == t.data_ptr()


def test_torch_capsule_to_vt():
    t = torch.arange(12, dtype=torch.int32).view(3, 4)
    cap = torch.utils.dlpack.to_dlpack(t)
    v = vt.from_dlpack(cap)
    assert v.data_ptr() == t.data_ptr()
    assert_same(v, t)


def test_torch_to_vt_keeps_memory_alive():
    t = torch.arange(100_000, dtype=torch.float64)
    v = vt.from_dlpack(t)
    del t
    gc.collect()
    _ = [torch.ones(100_000, dtype=torch.float64) for _ in range(5)]
    assert v[99_999].item() == 99_999.0


def test_round_trip_torch_vt_torch(rng):
    v0, t = pair((3, 4), "bfloat16", noncontig="transpose", rng=rng)
    back = torch.from_dlpack(vt.from_dlpack(t))
    assert back.data_ptr() == t.data_ptr()
    assert back.stride() == t.stride()
    assert torch.equal(back, t)


def test_vt_from_dlpack_of_vt(rng):
    v, _ = pair((3, 4), "float32", rng=rng)
    w = vt.from_dlpack(v)
    assert w.data_ptr() == v.data_ptr()
    w.fill_(3.0)
    assert (v == 3.0).all().item()


# ----------------------------------------------------------------------------------------- numpy


@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
def test_numpy_to_vt(dtype, rng):
    arr = random_array((4, 5), dtype, rng)
    v = vt.from_dlpack(arr)
    assert v.data_ptr() == arr.ctypes.data
    assert_same(v, torch.from_numpy(arr))
    strided = arr[::2, 1:].T
    w = vt.from_dlpack(strided)
    assert_same(w, torch.from_numpy(np.ascontiguousarray(strided)))
    assert tuple(w.stride()) == tuple(s // arr.itemsize for s in strided.strides)


@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
def test_vt_to_numpy_via_dlpack(dtype, rng):
    """numpy >= 2 asks for a versioned capsule (max_version=(1, 0)); older ones take the legacy one."""
    v, t = pair((3, 4), dtype, rng=rng)
    a = np.from_dlpack(v)
    assert a.ctypes.data == v.data_ptr()
    np.testing.assert_array_equal(a, t.numpy())
    s = np.from_dlpack(v.t())
    np.testing.assert_array_equal(s, t.t().numpy())


def test_numpy_readonly_array_like_torch():
    arr = np.arange(4.0)
    arr.flags.writeable = False
    try:
        torch.from_dlpack(arr)
        torch_ok = True
    except Exception as e:  # noqa: BLE001
        torch_ok = False
        exc = e
    if torch_ok:
        v = vt.from_dlpack(arr)
        assert_same(v, torch.from_numpy(arr.copy()))
    else:
        with pytest.raises(type(exc) if isinstance(exc, (BufferError, TypeError, ValueError, RuntimeError))
                           else Exception):
            vt.from_dlpack(arr)


# ------------------------------------------------------------------------------------ versioned capsules


def test_versioned_capsule():
    v = vt.arange(5, dtype=vt.float32)
    try:
        cap = v.__dlpack__(max_version=(1, 0))
    except TypeError:
        pytest.fail("__dlpack__ must accept max_version (DLPack >= 0.8 / array API 2023)")
    assert capsule_name(cap) in ("dltensor_versioned", "dltensor"), capsule_name(cap)
    assert capsule_name(cap) == "dltensor_versioned", "max_version=(1, 0) should produce a versioned capsule"
    w = vt.from_dlpack(cap)
    assert w.data_ptr() == v.data_ptr()
    assert_same(w, torch.arange(5, dtype=torch.float32))
    assert capsule_name(cap) == "used_dltensor_versioned"


def test_old_max_version_gives_legacy_capsule():
    v = vt.arange(5, dtype=vt.float32)
    cap = v.__dlpack__(max_version=(0, 8))
    assert capsule_name(cap) == "dltensor"


def test_versioned_capsule_to_torch():
    v = vt.arange(5, dtype=vt.int64)
    cap = v.__dlpack__(max_version=(1, 0))
    try:
        out = torch.from_dlpack(cap)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"torch cannot consume a raw versioned capsule: {e}")
    assert out.data_ptr() == v.data_ptr()


def test_consumed_capsule_raises():
    v = vt.arange(3, dtype=vt.float32)
    cap = v.__dlpack__()
    vt.from_dlpack(cap)
    with pytest.raises((RuntimeError, ValueError, BufferError)):
        vt.from_dlpack(cap)


def test_consumed_versioned_capsule_raises():
    v = vt.arange(3, dtype=vt.float32)
    cap = v.__dlpack__(max_version=(1, 0))
    vt.from_dlpack(cap)
    with pytest.raises((RuntimeError, ValueError, BufferError)):
        vt.from_dlpack(cap)


def test_consumed_torch_capsule_raises():
    cap = torch.utils.dlpack.to_dlpack(torch.ones(3))
    vt.from_dlpack(cap)
    with pytest.raises((RuntimeError, ValueError, BufferError)):
        vt.from_dlpack(cap)


def test_unconsumed_capsule_is_freed_without_crash():
    for _ in range(200):
        cap = vt.ones(1000).__dlpack__()
        del cap
    for _ in range(200):
        cap = vt.ones(1000).__dlpack__(max_version=(1, 0))
        del cap
    gc.collect()


def test_from_dlpack_rejects_non_dlpack_object():
    with pytest.raises((TypeError, AttributeError, RuntimeError, ValueError)):
        vt.from_dlpack([1, 2, 3])
