"""CUDA tensors: device memory from the caching allocator, copies between host and device (dense fast path,
casts and strided layouts through the GPU kernels), fill, DLPack with torch, allocator statistics, OOM and
recovery. Checked against NumPy/CPU results; runs only where a GPU exists."""
import os
import subprocess
import sys

import numpy as np
import pytest

import vibetensor.library as vlib
import vibetensor.torch as vt

pytestmark = pytest.mark.cuda

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def host(shape, name, rng):
    x = vt.from_numpy((rng.standard_normal(shape) * 50).astype(np.float32))
    return x.to(getattr(vt, name))


@pytest.mark.parametrize("name", DTYPES)
def test_round_trip_every_dtype(name, rng):
    x = host((33, 17), name, rng)
    y = x.to("cuda")
    assert y.device == vt.device("cuda:0") and y.dtype == x.dtype and y.is_cuda and y.get_device() == 0
    assert vt.equal(y.cpu(), x)


@pytest.mark.parametrize("name", DTYPES)
def test_fill_and_factories(name):
    z = vt.zeros(5, 7, dtype=getattr(vt, name), device="cuda")
    assert vt.equal(z.cpu(), vt.zeros(5, 7, dtype=getattr(vt, name)))
    f = vt.full((3, 4), 1, dtype=getattr(vt, name), device="cuda")
    assert vt.equal(f.cpu(), vt.ones(3, 4, dtype=getattr(vt, name)))
    v = f.t()[1:, ::2]  # a strided view filled in place
    v.fill_(0)
    expect = vt.ones(4, 3, dtype=getattr(vt, name))
    expect[1:, ::2] = 0
    assert vt.equal(f.t().cpu(), expect)


def test_strided_and_casting_copies(rng):
    x = host((6, 8, 5), "float32", rng)
    y = x.to("cuda")
    for view in (lambda t: t.permute(2, 0, 1), lambda t: t[:, ::3, 1:], lambda t: t.transpose(0, 2)[1]):
        assert vt.equal(view(y).contiguous().cpu(), view(x).contiguous())   # device-side strided copy
        assert vt.equal(view(y).cpu(), view(x))                              # strided download
    for name in DTYPES:
        d = getattr(vt, name)
        assert vt.equal(y.to(d).cpu(), x.to(d)), name                      # cast on the GPU
        assert vt.equal(x.permute(2, 1, 0).to("cuda").to(d).cpu(), x.permute(2, 1, 0).to(d)), name
    dst = vt.zeros(8, 6, device="cuda")
    dst.t().copy_(x[:, :, 0])                                              # strided upload
    assert vt.equal(dst.cpu(), x[:, :, 0].t().contiguous())
    b = vt.zeros(4, 3, device="cuda")
    b.copy_(vt.tensor([1.0, 2.0, 3.0]))                                    # broadcast upload
    assert b.cpu().tolist() == [[1.0, 2.0, 3.0]] * 4


def test_item_print_and_errors():
    y = vt.tensor([1.5, -2.0]).to("cuda")
    assert y[1].item() == -2.0
    # any one-element shape, as torch's (a critic's [1, 1] value, a [1, 1, 1] view of a strided buffer)
    assert y.reshape(2, 1)[1:].item() == -2.0 and y[1:].reshape(1, 1, 1).item() == -2.0
    assert float(vt.full((1, 1), 3, dtype=vt.int32, device="cuda")) == 3.0
    assert "device='cuda:0'" in repr(y)
    with pytest.raises(TypeError, match="cuda"):
        y.numpy()
    with pytest.raises(RuntimeError, match=r"cpu.*cuda:0|cuda:0.*cpu"):
        vt.ones(2) + y  # mixing devices names both
    with vlib.Library("cuda_errors_test", "DEF") as lib:  # an op with only a CPU kernel
        lib.define("twice(Tensor self) -> Tensor")
        lib.impl("twice", lambda t: t * 2, "CPU")
        with pytest.raises(NotImplementedError, match="CUDA"):
            vt.ops.cuda_errors_test.twice(y)  # no CUDA kernel: a clear error naming the backend, not a crash
    missing = vt.cuda.device_count() + 6  # past the last device, real or emulated
    with pytest.raises(RuntimeError, match=f"cuda:{missing}"):
        vt.zeros(2, device=f"cuda:{missing}")


def test_dlpack_with_torch_cuda_is_zero_copy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    v = vt.from_dlpack(t)
    assert v.is_cuda and v.data_ptr() == t.data_ptr() and v.shape == (3, 4)
    back = torch.from_dlpack(v.T)
    assert back.data_ptr() == t.data_ptr()
    assert torch.equal(back, t.T)
    v.fill_(7)  # on our stream; torch's default stream is ordered after it through the protocol
    assert torch.from_dlpack(v).sum().item() == 84


def test_allocator_stats_track_tensors():
    vt.cuda.empty_cache()
    base = vt.cuda.memory_allocated()
    x = vt.empty(1 << 20, device="cuda")  # 4 MiB
    s = vt.cuda.memory_stats()
    assert s["allocated_bytes.all.current"] - base >= 4 << 20
    assert s["reserved_bytes.all.current"] >= s["allocated_bytes.all.current"]
    peak = s["allocated_bytes.all.peak"]
    del x
    assert vt.cuda.memory_allocated() == base
    assert vt.cuda.max_memory_allocated() == peak
    assert vt.cuda.memory_reserved() > 0
    snap = vt.cuda.memory_snapshot()
    assert snap and all({"address", "total_size", "blocks", "segment_type"} <= set(seg) for seg in snap)
    vt.cuda.empty_cache()
    assert vt.cuda.memory_stats()["segment.all.current"] <= len(snap)


def test_oom_is_typed_and_recoverable():
    with pytest.raises(vt.cuda.OutOfMemoryError, match="Tried to allocate.*(capacity|Capacity)"):
        vt.empty(1 << 44, dtype=vt.uint8, device="cuda")  # 16 TiB
    free = vt.cuda.memory_stats()
    assert free["num_ooms"] >= 0
    y = vt.ones(1000, device="cuda")  # the process is still usable
    assert y.cpu().sum().item() == 1000


def test_memory_fraction_cap():
    vt.cuda.empty_cache()
    vt.cuda.set_per_process_memory_fraction(0.01)
    try:
        with pytest.raises(vt.cuda.OutOfMemoryError, match="fraction"):
            vt.empty(4 << 30, dtype=vt.uint8, device="cuda")
    finally:
        vt.cuda.set_per_process_memory_fraction(1.0)
    vt.empty(4 << 30, dtype=vt.uint8, device="cuda")


def test_bad_alloc_conf_names_the_key():
    code = "import vibetensor.torch as vt; vt.zeros(1, device='cuda')"
    env = dict(os.environ, VT_CUDA_ALLOC_CONF="max_split_size_mb:64,bogus_key:1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "bogus_key" in r.stderr and "Traceback" in r.stderr, (r.returncode, r.stderr[-3000:])
