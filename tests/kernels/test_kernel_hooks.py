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
