"""What every kernel hook does before a launch (Note [Kernel launch checks]).

Note [Kernel launch checks]
A Triton or NVRTC kernel sees its tensor arguments as bare device pointers. Before launching, the hooks find
the launch device from the tensor arguments and refuse, naming the argument: a tensor that is not on a CUDA
device, tensors on different devices, and a non-contiguous tensor unless the caller said the kernel takes
strides for it (`strided=`), since a kernel indexing a pointer as dense memory would read the wrong elements.
Then the hooks make the launch device current (under device emulation that is the GPU behind the logical
device) and launch on vibetensor's current stream of that device, or on the stream given, so the kernel is
ordered after the work vibetensor queued on that stream and before the work queued after it, as a built-in
op would be. Nothing here synchronizes.
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple

from .._C import core as _core
from .._C import cuda as _cuda


class LaunchPlan(NamedTuple):
    device: int     # vibetensor (logical) device index
    physical: int   # the CUDA ordinal behind it (Note [Emulated devices]): what Triton and the driver are told
    stream: int     # cudaStream_t handle (0: the legacy default stream)


def _allowed(strided, name, position) -> bool:
    if strided is True:
        return True
    return name in strided or position in strided


def plan_launch(kernel: str, args, strided=(), stream=None) -> LaunchPlan:
    """`args`: (name or None, position, value) for every argument of the launch."""
    tensors = [(name, pos, a) for name, pos, a in args if isinstance(a, _core.Tensor)]

    def label(name, pos):
        return f"argument '{name}' (position {pos})" if name else f"argument {pos}"

    for name, pos, t in tensors:
        if t.device.type != "cuda":
            raise ValueError(f"{kernel}: {label(name, pos)} is a {t.device} tensor; GPU kernels take CUDA tensors "
                             f"(move it with .to('cuda'))")
    devices = sorted({t.device.index for _, _, t in tensors})
    if len(devices) > 1:
        where = ", ".join(f"{label(n, p)} on {t.device}" for n, p, t in tensors)
        raise ValueError(f"{kernel}: tensor arguments are on different devices ({where}); a kernel runs on one")
    for name, pos, t in tensors:
        if not t.is_contiguous() and not _allowed(strided, name, pos):
            raise ValueError(
                f"{kernel}: {label(name, pos)} is not contiguous (shape {tuple(t.shape)}, strides {t.stride()}); "
                f"the kernel receives only its data pointer. Pass .contiguous(), or name it in strided= if the "
                f"kernel takes its strides")
    device = devices[0] if devices else _cuda.current_device()
    if stream is None:
        handle = _cuda.current_stream(device)
    else:
        if getattr(stream, "device_index", device) != device:
            raise ValueError(f"{kernel}: stream {stream} is on cuda:{stream.device_index}, the tensors on cuda:{device}")
        handle = int(getattr(stream, "cuda_stream", stream))
    return LaunchPlan(device, _cuda.physical_device(device), int(handle))


@contextlib.contextmanager
def current_device(device: int):
    """Makes vibetensor device `device` current for the launch (and its GPU the CUDA current device)."""
    previous = _cuda.current_device()
    if previous != device:
        _cuda.set_device(device)
    try:
        yield
    finally:
        if previous != device:
            _cuda.set_device(previous)
