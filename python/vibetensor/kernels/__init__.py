"""Hooks for kernels written outside vibetensor: `@triton.jit` kernels (launch_triton, triton_kernel) and CUDA
C++ compiled at run time with NVRTC (RawKernel). Both take vibetensor tensors as arguments, check them before
launching (Note [Kernel launch checks] in _launch.py) and run on vibetensor's current stream of the tensors'
device, so they order with built-in ops and work as kernels of ops defined through vibetensor.library:

    lib = vibetensor.library.Library("mylib", "DEF")
    lib.define("scale(Tensor x, float a) -> Tensor")
    def scale_cuda(x, a):
        y = vt.empty_like(x)
        scale_kernel(((x.numel() + 255) // 256,), (256,), (x, y, np.float32(a), np.int32(x.numel())))
        return y
    lib.impl("scale", scale_cuda, "CUDA")

Triton and cuda-bindings are imported only when used.
"""
from .nvrtc import RawKernel, compile_cubin
from .triton import TritonKernel, launch_triton, triton_kernel

__all__ = ["RawKernel", "TritonKernel", "compile_cubin", "launch_triton", "triton_kernel"]
