"""The checks kernel hooks make before any launch (Note [Kernel launch checks]), which need no GPU: tensors on
the CPU, non-contiguous tensors unless declared strided, scalars without a C type, bad grids. The launches
themselves are tested on the GPU (tests/cuda/test_kernel_hooks_cuda.py)."""
import numpy as np
import pytest

import vibetensor.kernels as vk
import vibetensor.torch as vt

CODE = 'extern "C" __global__ void scale(const float* x, float* y, float a, int n) {}'


class FakeJit:
    """Stands in for a @triton.jit function (arg_names + kernel[grid](...)); records launches."""

    arg_names = ["x", "y", "n", "BLOCK"]
    __name__ = "fake_kernel"

    def __init__(self):
        self.launched = []

    def __getitem__(self, grid):
        return lambda *a, **k: self.launched.append((grid, a, k))


def test_cpu_tensors_are_refused_naming_the_argument():
    x = vt.ones(4)
    with pytest.raises(ValueError, match=r"RawKernel 'scale': argument 0 is a cpu tensor"):
        vk.RawKernel(CODE, "scale")(1, 32, (x, x, np.float32(1), np.int32(4)))
    fake = FakeJit()
    with pytest.raises(ValueError, match=r"fake_kernel: argument 'y' \(position 1\) is a cpu tensor"):
        vk.launch_triton(fake, (1,), 1, x, 4, BLOCK=4)
    assert fake.launched == []


def test_scalars_need_a_c_type():
    k = vk.RawKernel(CODE, "scale")
    for bad in (3, 2.0, True, "x"):
        with pytest.raises(TypeError, match="argument 2 is .*np.int32"):
            k(1, 32, (None, None, bad, np.int32(4)))


def test_grid_and_block_shapes():
    k = vk.RawKernel(CODE, "scale")
    for bad in (0, (1, 2, 3, 4), (1.5,), ()):
        with pytest.raises(ValueError, match="grid must be"):
            k(bad, 32, ())
    with pytest.raises(ValueError, match="block must be"):
        k(1, -1, ())


@pytest.mark.cuda
def test_non_contiguous_refused_unless_declared_strided():
    x = vt.ones(4, 4, device="cuda").t()
    fake = FakeJit()
    with pytest.raises(ValueError, match=r"argument 'x' \(position 0\) is not contiguous .*strides \(1, 4\)"):
        vk.launch_triton(fake, (1,), x, x.contiguous(), 16, BLOCK=16)
    assert fake.launched == []
    with pytest.raises(ValueError, match=r"argument 1 is not contiguous"):
        vk.RawKernel(CODE, "scale")(1, 32, (x.contiguous(), x, np.float32(1), np.int32(16)))
    vk.launch_triton(fake, (1,), x, x, 16, BLOCK=16, strided=("x", 1))
    vk.launch_triton(fake, (2,), x, x, 16, BLOCK=16, strided=True)
    assert [g for g, _, _ in fake.launched] == [(1,), (2,)]


@pytest.mark.cuda
def test_fake_launch_sees_vibetensor_current_device():
    fake = FakeJit()
    vk.launch_triton(fake, (1,), vt.ones(4, device="cuda"), vt.ones(4, device="cuda"), 4, BLOCK=4)
    assert len(fake.launched) == 1


def _nvrtc_or_skip():
    nvrtc = pytest.importorskip("cuda.bindings.nvrtc")
    try:
        nvrtc.nvrtcVersion()
    except Exception as e:  # the bindings are there, the NVRTC library is not
        pytest.skip(f"NVRTC library not found: {e}")


def test_nvrtc_compiles_and_caches_without_a_gpu(monkeypatch, tmp_path):
    """Compilation needs no GPU: cubins, C++ name expressions, compile errors and both cache levels."""
    _nvrtc_or_skip()
    from vibetensor.kernels import nvrtc

    monkeypatch.setenv("VT_NVRTC_CACHE_DIR", str(tmp_path))
    calls = []
    real = nvrtc._nvrtc_compile
    monkeypatch.setattr(nvrtc, "_nvrtc_compile", lambda *a: calls.append(a) or real(*a))
    code = CODE + f"\n// {tmp_path}"  # a source no earlier test compiled
    cubin, symbol = vk.compile_cubin(code, "scale", arch="sm_90")
    assert cubin[:4] == b"\x7fELF" and symbol == "scale"
    assert vk.compile_cubin(code, "scale", arch="sm_90") == (cubin, symbol) and len(calls) == 1  # memory
    nvrtc._memory_cache.clear()
    assert vk.compile_cubin(code, "scale", arch="sm_90") == (cubin, symbol) and len(calls) == 1  # disk
    other = vk.compile_cubin(code, "scale", arch="sm_100")  # another architecture is another cubin
    assert len(calls) == 2 and other[0] != cubin
    template = "template <typename T> __global__ void axpy(T a, const T* x, T* y, long long n) {}"
    _, lowered = vk.compile_cubin(template, "axpy", arch="sm_90", name_expression="axpy<double>")
    assert lowered == "_Z4axpyIdEvT_PKS0_PS0_x"
    with pytest.raises(RuntimeError, match=r"(?s)NVRTC could not compile kernel 'broken'.*identifier \"nope\""):
        vk.compile_cubin('extern "C" __global__ void broken() { nope; }', "broken", arch="sm_90")


def test_triton_router_answers_only_inside_a_launch(monkeypatch):
    """Note [Triton stream routing] against a stand-in for Triton's active driver: inside a vibetensor launch
    (this thread's plan) device and stream come from the plan; outside it, and on other threads, from the
    functions the router replaced."""
    import sys
    import threading
    import types

    from vibetensor.kernels import _launch
    from vibetensor.kernels import triton as vk_triton

    class Driver:
        def get_current_device(self):
            return 5

        def get_current_stream(self, device):
            return 1000 + device

    driver_module = types.SimpleNamespace(driver=types.SimpleNamespace(active=Driver()))
    monkeypatch.setitem(sys.modules, "triton", types.ModuleType("triton"))
    monkeypatch.setitem(sys.modules, "triton.runtime", driver_module)
    monkeypatch.setattr(vk_triton, "_installed_on", None)
    vk_triton._install_router()
    vk_triton._install_router()  # once per driver: a second call wraps nothing twice
    active = driver_module.driver.active
    assert (active.get_current_device(), active.get_current_stream(3)) == (5, 1003)
    vk_triton._routing.plan = _launch.LaunchPlan(device=1, physical=0, stream=0xABC)
    try:
        assert (active.get_current_device(), active.get_current_stream(0)) == (0, 0xABC)
        seen = []
        t = threading.Thread(target=lambda: seen.append((active.get_current_device(), active.get_current_stream(2))))
        t.start()
        t.join()
        assert seen == [(5, 1002)]  # another thread is not inside the launch
    finally:
        vk_triton._routing.plan = None
    assert (active.get_current_device(), active.get_current_stream(3)) == (5, 1003)
