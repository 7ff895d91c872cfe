"""Triton and NVRTC kernels launched on vibetensor tensors and streams: results against vibetensor's own ops,
ordering after a delayed producer on another stream (the launch must land on the consumer's vibetensor
stream), use as kernels of ops defined through vibetensor.library, launches from NVRTC's compile cache and
C++ name expressions (compilation alone is tested without a GPU in tests/kernels)."""
import itertools

import numpy as np
import pytest
from producer import delayed_fill

import vibetensor.kernels as vk
import vibetensor.library as vlib
import vibetensor.torch as vt

pytestmark = pytest.mark.cuda
_ns = itertools.count()

SCALE = r'''
extern "C" __global__ void scale(const float* x, float* y, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i];
}'''
TEMPLATE = r'''
template <typename T> __global__ void axpy(T a, const T* x, T* y, long long n) {
  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < n) y[i] += a * x[i];
}'''


def nvrtc_scale():
    pytest.importorskip("cuda.bindings")
    return vk.RawKernel(SCALE, "scale")


def launch_scale(k, x, y, a):
    n = x.numel()
    k(((n + 255) // 256,), (256,), (x, y, np.float32(a), np.int32(n)))


def test_nvrtc_kernel_matches_vibetensor():
    k = nvrtc_scale()
    x = vt.randn(100_001, device="cuda")
    y = vt.empty_like(x)
    launch_scale(k, x, y, 2.5)
    assert bool(((y - x * 2.5).abs() < 1e-6).all().item())


def test_nvrtc_template_by_name_expression_and_int64_scalar():
    pytest.importorskip("cuda.bindings")
    k = vk.RawKernel(TEMPLATE, "axpy", name_expression="axpy<double>")
    x, y = vt.randn(1000, dtype=vt.float64, device="cuda"), vt.ones(1000, dtype=vt.float64, device="cuda")
    ref = y + 3 * x
    k((4,), (256,), (np.float64(3), x, y, np.int64(1000)))
    assert bool(((y - ref).abs() < 1e-12).all().item())


def test_nvrtc_launches_from_both_cache_levels(monkeypatch, tmp_path):
    pytest.importorskip("cuda.bindings")
    from vibetensor.kernels import nvrtc

    monkeypatch.setenv("VT_NVRTC_CACHE_DIR", str(tmp_path))
    calls = []
    real = nvrtc._nvrtc_compile
    monkeypatch.setattr(nvrtc, "_nvrtc_compile", lambda *a: calls.append(a) or real(*a))
    code = SCALE + "\n// cache test " + str(tmp_path)
    x = vt.ones(10, device="cuda")
    for _ in range(2):
        y = vt.empty_like(x)
        launch_scale(vk.RawKernel(code, "scale"), x, y, 3.0)  # a new object: the cache is by source, not object
        assert y.cpu().tolist() == [3.0] * 10
    assert len(calls) == 1
    nvrtc._memory_cache.clear()
    launch_scale(vk.RawKernel(code, "scale"), x, y, 4.0)  # from the disk cache
    assert len(calls) == 1 and y.cpu().tolist() == [4.0] * 10


def test_nvrtc_launch_waits_for_delayed_producer_on_another_stream():
    k = nvrtc_scale()
    producer, consumer = vt.cuda.Stream(), vt.cuda.Stream()
    x = vt.zeros(1 << 20, device="cuda")
    y = vt.full((1 << 20,), -1.0, device="cuda")
    keep = delayed_fill(x, 7.0, producer)
    consumer.wait_stream(producer)
    with vt.cuda.stream(consumer):
        launch_scale(k, x, y, 2.0)  # must be queued on `consumer`, after the producer's fill
    consumer.synchronize()
    assert bool((y == 14.0).all().item())
    del keep


def test_nvrtc_kernel_inside_a_library_op():
    k = nvrtc_scale()
    ns = f"hooks_nvrtc{next(_ns)}"
    lib = vlib.Library(ns, "DEF")
    lib.define("scale(Tensor x, float a) -> Tensor")

    def scale_cuda(x, a):
        y = vt.empty_like(x)
        launch_scale(k, x, y, a)
        return y

    lib.impl("scale", scale_cuda, "CUDA")
    x = vt.randn(5000, device="cuda")
    out = getattr(vt.ops, ns).scale(x, 3.0)
    assert bool(((out - 3 * x).abs() < 1e-5).all().item())


def triton_add():
    triton = pytest.importorskip("triton")
    tl = pytest.importorskip("triton.language")

    @triton.jit
    def add_kernel(x, y, out, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(out + offs, tl.load(x + offs, mask=mask) + tl.load(y + offs, mask=mask), mask=mask)

    return triton, add_kernel


def test_triton_kernel_matches_vibetensor_in_several_dtypes():
    triton, add_kernel = triton_add()
    for dtype in (vt.float32, vt.float16, vt.bfloat16, vt.int32):
        x = vt.randint(-100, 100, (70_000,), device="cuda").to(dtype)  # sums exact in every dtype
        y = vt.randint(-100, 100, (70_000,), device="cuda").to(dtype)
        out = vt.empty_like(x)
        vk.launch_triton(add_kernel, (triton.cdiv(x.numel(), 1024),), x, y, out, x.numel(), BLOCK=1024)
        assert bool((out == x + y).all().item()), dtype


def test_triton_launch_waits_for_delayed_producer_and_keeps_torch_streams():
    triton, add_kernel = triton_add()
    add = vk.triton_kernel(add_kernel)
    producer, consumer = vt.cuda.Stream(), vt.cuda.Stream()
    n = 1 << 20
    x, y, out = vt.zeros(n, device="cuda"), vt.ones(n, device="cuda"), vt.full((n,), -1.0, device="cuda")
    keep = delayed_fill(x, 5.0, producer)
    consumer.wait_stream(producer)
    with vt.cuda.stream(consumer):
        add[(triton.cdiv(n, 1024),)](x, y, out, n, BLOCK=1024)
    consumer.synchronize()
    assert bool((out == 6.0).all().item())
    del keep
    from triton.runtime import driver  # outside a vibetensor launch Triton asks torch again

    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        assert driver.active.get_current_stream(0) == torch.cuda.current_stream(0).cuda_stream


def test_triton_kernel_inside_a_library_op_and_wrong_device_errors():
    triton, add_kernel = triton_add()
    ns = f"hooks_triton{next(_ns)}"
    lib = vlib.Library(ns, "DEF")
    lib.define("add2(Tensor x, Tensor y) -> Tensor")

    def add2_cuda(x, y):
        out = vt.empty_like(x)
        vk.launch_triton(add_kernel, (triton.cdiv(x.numel(), 256),), x, y, out, x.numel(), BLOCK=256)
        return out

    lib.impl("add2", add2_cuda, "CUDA")
    x, y = vt.randn(3000, device="cuda"), vt.randn(3000, device="cuda")
    assert bool((getattr(vt.ops, ns).add2(x, y) == x + y).all().item())
    with pytest.raises(ValueError, match=r"argument 'y' \(position 1\) is a cpu tensor"):
        vk.launch_triton(add_kernel, (1,), x, y.cpu(), x, 3000, BLOCK=256)
    with pytest.raises(ValueError, match=r"argument 'x' \(position 0\) is not contiguous"):
        m = vt.randn(64, 64, device="cuda").t()
        vk.launch_triton(add_kernel, (4,), m, m.contiguous(), m.contiguous(), 4096, BLOCK=1024)


def test_launches_on_the_second_device_and_its_current_stream():
    """On a second device (a real one, or a logical one sharing the GPU: VT_EMULATE_DEVICES=2), the hooks
    launch on that device's current stream, after a delayed producer there."""
    if vt.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices: run with VT_EMULATE_DEVICES=2 on one GPU")
    k = nvrtc_scale()
    triton, add_kernel = triton_add()
    n = 1 << 20
    x = vt.zeros(n, device="cuda:1")
    y, z = vt.full((n,), -1.0, device="cuda:1"), vt.full((n,), -1.0, device="cuda:1")
    producer = vt.cuda.Stream(device=1)
    keep = delayed_fill(x, 4.0, producer)
    vt.cuda.current_stream(1).wait_stream(producer)
    launch_scale(k, x, y, 0.5)
    vk.launch_triton(add_kernel, (triton.cdiv(n, 1024),), x, x, z, n, BLOCK=1024)
    assert bool((y == 2.0).all().item()) and bool((z == 8.0).all().item())
    assert vt.cuda.current_device() == 0  # the launches restored the caller's device
    del keep
