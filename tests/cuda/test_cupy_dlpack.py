"""DLPack with CuPy on the GPU: zero-copy both ways (same device pointer, writes visible on the other side) and
the stream protocol honoured both ways: a consumer reading on its own stream sees data a delayed producer
wrote on the producer's stream, with no synchronize in between."""
import numpy as np
import pytest
from producer import delayed_fill

import vibetensor.torch as vt

pytestmark = pytest.mark.cuda
cp = pytest.importorskip("cupy")


def test_vibetensor_to_cupy_is_zero_copy():
    x = vt.arange(12, dtype=vt.float32, device="cuda").reshape(3, 4)[:, 1:]
    c = cp.from_dlpack(x)
    assert c.data.ptr == x.data_ptr() and c.shape == (3, 3) and c.strides == (16, 4)
    c[0, 0] = 100
    assert x[0, 0].item() == 100
    for dtype in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"):
        v = vt.ones(5, device="cuda").to(getattr(vt, dtype))
        assert cp.from_dlpack(v).dtype == np.dtype(dtype)


def test_cupy_to_vibetensor_is_zero_copy():
    c = cp.arange(20, dtype=cp.int64).reshape(4, 5)[::2]
    v = vt.from_dlpack(c)
    assert v.data_ptr() == c.data.ptr and tuple(v.shape) == (2, 5) and v.stride() == (10, 1)
    assert v.device == vt.device("cuda:0")
    v.add_(1)
    assert int(c[1, 0]) == 11


def test_cupy_consumer_waits_for_vibetensor_producer():
    n = 1 << 20
    producer = vt.cuda.Stream()
    x = vt.zeros(n, device="cuda")
    keep = delayed_fill(x, 3.0, producer)
    with vt.cuda.stream(producer):  # vibetensor's current stream is the producer's: __dlpack__ orders after it
        with cp.cuda.Stream(non_blocking=True) as cs:
            total = cp.from_dlpack(x).sum()  # cupy passes cs to __dlpack__(stream=...)
        cs.synchronize()
    assert float(total) == 3.0 * n
    del keep


def test_vibetensor_consumer_waits_for_cupy_producer():
    n = 1 << 22
    consumer = vt.cuda.Stream()
    with cp.cuda.Stream(non_blocking=True) as cs:  # cupy's current stream: the producer the protocol orders
        c = cp.zeros(n, dtype=cp.float32)
        a = cp.ones((4096, 4096), dtype=cp.float32)
        for _ in range(12):  # ~30 ms of work on cupy's stream before the fill
            a = a @ a * (1.0 / 4096)
        c.fill(2.0)
        with vt.cuda.stream(consumer):
            v = vt.from_dlpack(c)  # passes `consumer` to cupy's __dlpack__, which makes it wait for cs
            # .item() copies on the current stream, `consumer`: outside this block it would copy on the default
            # stream, which is not ordered after a pool stream (a race in torch too)
            total = v.sum().item()
    assert total == 2.0 * n
    cs.synchronize()
