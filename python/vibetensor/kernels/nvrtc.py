"""RawKernel: CUDA C++ compiled at run time with NVRTC and launched on vibetensor tensors and streams.

    k = vk.RawKernel(r'''
    extern "C" __global__ void scale(const float* x, float* y, float a, int n) {
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i < n) y[i] = a * x[i];
    }''', "scale")
    k(((n + 255) // 256,), (256,), (x, y, np.float32(2.0), np.int32(n)))

Arguments: vibetensor tensors pass their data pointer (after Note [Kernel launch checks]); scalars must carry
their C type (NumPy scalars such as np.int32/np.float32, or ctypes values): a bare Python int or float is
refused, because guessing `int` where the kernel declares `long long` (or the reverse) corrupts the argument
block silently. The kernel runs on the tensors' device, on vibetensor's current stream there (or `stream=`).

Compilation needs NVIDIA's `cuda-bindings` package (the `kernels` extra: cuda-bindings>=13,<14). Code is
compiled once per (source, name, options, GPU architecture, NVRTC version) into a cubin, kept in memory and on
disk (VT_NVRTC_CACHE_DIR, default ~/.cache/vibetensor/nvrtc; empty disables the disk cache), and loaded once
per device.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import threading

import numpy as np

from .._C import core as _core
from ._launch import current_device, plan_launch

_CTYPES = {
    np.dtype(np.bool_): ctypes.c_bool, np.dtype(np.int8): ctypes.c_int8, np.dtype(np.uint8): ctypes.c_uint8,
    np.dtype(np.int16): ctypes.c_int16, np.dtype(np.uint16): ctypes.c_uint16, np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.uint32): ctypes.c_uint32, np.dtype(np.int64): ctypes.c_int64, np.dtype(np.uint64): ctypes.c_uint64,
    np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double,
}
_memory_cache: dict[str, tuple[bytes, str]] = {}
_lock = threading.Lock()


def _bindings():
    try:
        from cuda.bindings import driver, nvrtc
    except ImportError as e:
        raise ImportError("RawKernel needs NVIDIA's cuda-bindings: pip install 'vibetensor[kernels]' "
                          "(cuda-bindings>=13.0,<14)") from e
    return driver, nvrtc


def _check(result, call):
    """cuda-bindings calls return (status, *values): raises on a failed status, else returns the value(s)."""
    status, *values = result if isinstance(result, tuple) else (result,)
    if int(getattr(status, "value", status)) != 0:
        driver, nvrtc = _bindings()
        text = (nvrtc.nvrtcGetErrorString(status) if isinstance(status, nvrtc.nvrtcResult)
                else driver.cuGetErrorName(status))[-1]
        raise RuntimeError(f"{call} failed: {text.decode() if isinstance(text, bytes) else text}")
    return values[0] if len(values) == 1 else (tuple(values) if values else None)


def _arch(physical):
    driver, _ = _bindings()
    _check(driver.cuInit(0), "cuInit")
    dev = _check(driver.cuDeviceGet(physical), "cuDeviceGet")
    attr = driver.CUdevice_attribute
    major = _check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev), "cuDeviceGetAttribute")
    minor = _check(driver.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev), "cuDeviceGetAttribute")
    return f"sm_{major}{minor}"


def _cache_dir():
    d = os.environ.get("VT_NVRTC_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "vibetensor", "nvrtc"))
    return d or None


def compile_cubin(code: str, name: str, options=(), arch: str = "sm_90", name_expression: str | None = None):
    """(cubin bytes, the symbol to load) for `code`, compiled for `arch`; cached (see the module docstring)."""
    driver, nvrtc = _bindings()
    version = _check(nvrtc.nvrtcVersion(), "nvrtcVersion")
    options = tuple(options)
    if not any(o.startswith(("-arch", "--gpu-architecture")) for o in options):
        options += (f"--gpu-architecture={arch}",)
    key = hashlib.sha256(repr((code, name, options, name_expression, version)).encode()).hexdigest()
    with _lock:
        if key in _memory_cache:
            return _memory_cache[key]
    cache_dir = _cache_dir()
    path = os.path.join(cache_dir, key) if cache_dir else None
    if path and os.path.exists(path + ".cubin") and os.path.exists(path + ".symbol"):
        with open(path + ".cubin", "rb") as f, open(path + ".symbol") as g:
            entry = (f.read(), g.read())
    else:
        entry = _nvrtc_compile(nvrtc, code, name, options, name_expression)
        if path:
            os.makedirs(cache_dir, exist_ok=True)
            for suffix, data, mode in ((".cubin", entry[0], "wb"), (".symbol", entry[1], "w")):
                tmp = f"{path}{suffix}.{os.getpid()}.tmp"
                with open(tmp, mode) as f:
                    f.write(data)
                os.replace(tmp, path + suffix)  # atomic: a concurrent reader sees all or nothing
    with _lock:
        _memory_cache[key] = entry
    return entry


def _nvrtc_compile(nvrtc, code, name, options, name_expression):
    prog = _check(nvrtc.nvrtcCreateProgram(code.encode(), f"{name}.cu".encode(), 0, [], []), "nvrtcCreateProgram")
    try:
        if name_expression:
            _check(nvrtc.nvrtcAddNameExpression(prog, name_expression.encode()), "nvrtcAddNameExpression")
        opts = [o.encode() for o in options]
        (status,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        if int(getattr(status, "value", status)) != 0:
            size = _check(nvrtc.nvrtcGetProgramLogSize(prog), "nvrtcGetProgramLogSize")
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise RuntimeError(f"NVRTC could not compile kernel '{name}' (options {list(options)}):\n"
                               f"{log.decode(errors='replace').rstrip(chr(0)).strip()}")
        size = _check(nvrtc.nvrtcGetCUBINSize(prog), "nvrtcGetCUBINSize")
        cubin = b" " * size
        _check(nvrtc.nvrtcGetCUBIN(prog, cubin), "nvrtcGetCUBIN")
        symbol = name
        if name_expression:
            lowered = _check(nvrtc.nvrtcGetLoweredName(prog, name_expression.encode()), "nvrtcGetLoweredName")
            symbol = (lowered.decode() if isinstance(lowered, bytes) else str(lowered)).rstrip("\0")
        return cubin, symbol
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def _c_arg(value, position, name):
    if isinstance(value, _core.Tensor):
        return ctypes.c_void_p(value.data_ptr())
    if isinstance(value, ctypes._SimpleCData):
        return value
    if value is None:
        return ctypes.c_void_p(None)
    if isinstance(value, np.generic):
        if value.dtype == np.float16:
            return ctypes.c_uint16(int(value.view(np.uint16)))
        if value.dtype in _CTYPES:
            return _CTYPES[value.dtype](value.item())
    raise TypeError(f"RawKernel '{name}': argument {position} is {type(value).__name__} {value!r}; pass a "
                    f"vibetensor tensor, or a scalar with its C type (np.int32(n), np.float32(x), ctypes.c_int64(n))")


def _dims(x, what):
    dims = (x,) if isinstance(x, int) else tuple(x)
    if not 1 <= len(dims) <= 3 or any(not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"{what} must be a positive int or a tuple of 1 to 3 positive ints, got {x!r}")
    return dims + (1,) * (3 - len(dims))


class RawKernel:
    """A CUDA C++ kernel (`name` in `code`, extern "C" unless `name_expression` names a C++ symbol such as
    "scale<float>"), compiled on first launch for the GPU it runs on. `strided`: positions of tensor arguments
    the kernel indexes with strides it is given (True: all); other tensors must be contiguous."""

    def __init__(self, code: str, name: str, options=(), *, name_expression: str | None = None, strided=()):
        self.code, self.name, self.options = code, name, tuple(options)
        self.name_expression, self.strided = name_expression, strided
        self._functions = {}  # physical device -> (CUmodule, CUfunction)

    def _function(self, physical):
        if physical not in self._functions:
            driver, _ = _bindings()
            cubin, symbol = compile_cubin(self.code, self.name, self.options, _arch(physical), self.name_expression)
            dev = _check(driver.cuDeviceGet(physical), "cuDeviceGet")
            ctx = _check(driver.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
            _check(driver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
            image = np.frombuffer(cubin, dtype=np.uint8)  # passed by address: works across cuda-bindings versions
            module = _check(driver.cuModuleLoadData(image.ctypes.data), "cuModuleLoadData")
            function = _check(driver.cuModuleGetFunction(module, symbol.encode()), "cuModuleGetFunction")
            self._functions[physical] = (module, function)
        return self._functions[physical][1]

    def __call__(self, grid, block, args, *, shared_mem: int = 0, stream=None):
        grid, block = _dims(grid, "grid"), _dims(block, "block")
        args = tuple(args)
        holders = [_c_arg(a, i, self.name) for i, a in enumerate(args)]
        plan = plan_launch(f"RawKernel '{self.name}'", [(None, i, a) for i, a in enumerate(args)], self.strided, stream)
        pointers = (ctypes.c_void_p * max(len(holders), 1))(*[ctypes.addressof(h) for h in holders])
        driver, _ = _bindings()
        with current_device(plan.device):
            function = self._function(plan.physical)
            if shared_mem > 48 * 1024:
                attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
                _check(driver.cuFuncSetAttribute(function, attr, shared_mem), "cuFuncSetAttribute")
            _check(driver.cuLaunchKernel(function, *grid, *block, shared_mem, driver.CUstream(plan.stream),
                                         ctypes.addressof(pointers), 0), f"cuLaunchKernel('{self.name}')")

    def __repr__(self):
        return f"RawKernel({self.name!r})"
