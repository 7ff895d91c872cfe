"""vibetensor.cuda: devices and device memory. Works on machines without a driver: is_available() is then
False, unavailable_reason() says why, and calls that need a device raise RuntimeError naming the device.

Memory comes from a stream-ordered caching allocator per device (Note [Stream-ordered free] in
core/include/vt/cuda/caching_allocator.h); its statistics use PyTorch's keys. CUDA graphs (graphs.py) capture
into private pools of that allocator (Note [Graph-private pool]). Page-locked host memory for asynchronous
copies (Tensor.pin_memory(), empty(..., pin_memory=True)) comes from a caching host allocator (Note [Pinned
host memory]). vibetensor.cuda.memory records allocation history with Python stacks and dumps snapshots in
torch's format.
"""
from .. import _C
from .._C import cuda as _cuda

OutOfMemoryError = _C.OutOfMemoryError


def is_available() -> bool:
    return _cuda.is_available()


def device_count() -> int:
    return _cuda.device_count()


def unavailable_reason() -> str:
    """Why no CUDA device can be used ("" when one can)."""
    return _cuda.unavailable_reason()


def emulate_devices(n: int) -> None:
    """Makes one physical GPU appear as `n` logical CUDA devices (same as VT_EMULATE_DEVICES=n); only before the
    first CUDA use. Each logical device gets its own caching allocator, streams and default stream; everything
    that reports devices says "emulated" (Note [Emulated devices] in core/include/vt/cuda/device.h)."""
    _cuda.emulate_devices(int(n))


def is_emulated() -> bool:
    return _cuda.is_emulated()


def emulation_label() -> str:
    """"" without emulation, else e.g. "emulated: 4 logical devices on 1 physical GPU"."""
    return _cuda.emulation_label()


def physical_device(device=None) -> int:
    """The physical CUDA ordinal a (logical) device runs on."""
    d = _index(device)
    return _cuda.physical_device(current_device() if d is None else d)


class _DeviceProperties:
    def __init__(self, props: dict):
        self.__dict__.update(props)

    def __repr__(self):
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // 2**20}MB, multi_processor_count={self.multi_processor_count}"
                f"{', emulated on physical GPU %d' % self.physical_device if self.is_emulated else ''})")


def get_device_properties(device=None) -> _DeviceProperties:
    """torch-shaped device properties; under emulation the name ends in "(emulated)" and total_memory is the
    logical device's share of its GPU."""
    d = _index(device)
    return _DeviceProperties(_cuda.device_properties(current_device() if d is None else d))


def get_device_name(device=None) -> str:
    return get_device_properties(device).name


def _sleep(cycles: int, device=None) -> None:
    """Queues a kernel spinning ~`cycles` GPU cycles on the current stream (torch.cuda._sleep)."""
    d = _index(device)
    _cuda._sleep(int(cycles), current_device() if d is None else d)


def _index(device):
    if device is None or isinstance(device, int):
        return device
    from .._C import core

    d = device if isinstance(device, core.device) else core.device(device)
    return d.index


def current_device() -> int:
    return _cuda.current_device()


def set_device(device) -> None:
    _cuda.set_device(_index(device))


class device:
    """torch.cuda.device: makes `device` (an index, "cuda:k" or a device) the current one for a block and puts
    the previous one back after; None or -1 changes nothing."""

    def __init__(self, device):
        self.idx = -1 if device is None else _index(device)
        self.prev_idx = -1

    def __enter__(self):
        if self.idx is not None and self.idx >= 0:
            self.prev_idx = current_device()
            if self.prev_idx != self.idx:
                set_device(self.idx)
        return self

    def __exit__(self, *exc):
        if self.idx is not None and self.idx >= 0 and self.prev_idx != self.idx:
            set_device(self.prev_idx)
        return False


def synchronize(device=None) -> None:
    _cuda.synchronize(_index(device))


def memory_stats(device=None) -> dict:
    """PyTorch-compatible keys: allocated_bytes.all.current, reserved_bytes.large_pool.peak, num_ooms..."""
    return _cuda.memory_stats(_index(device))


def memory_allocated(device=None) -> int:
    return memory_stats(device)["allocated_bytes.all.current"]


def max_memory_allocated(device=None) -> int:
    return memory_stats(device)["allocated_bytes.all.peak"]


def memory_reserved(device=None) -> int:
    return memory_stats(device)["reserved_bytes.all.current"]


def max_memory_reserved(device=None) -> int:
    return memory_stats(device)["reserved_bytes.all.peak"]


def reset_peak_memory_stats(device=None) -> None:
    _cuda.reset_peak_memory_stats(_index(device))


def memory_snapshot(device=None) -> list:
    """Segments with their blocks (address, size, requested_size, state, frames), as
    torch.cuda.memory_snapshot(); `frames` holds the allocating Python stack while
    vibetensor.cuda.memory._record_memory_history() is on."""
    return _cuda.memory_snapshot(_index(device))


def empty_cache() -> None:
    """Returns cached, unused device memory to the driver."""
    if is_available():
        _cuda.empty_cache()


def set_per_process_memory_fraction(fraction: float, device=None) -> None:
    _cuda.set_per_process_memory_fraction(fraction, _index(device))


from . import memory  # noqa: F401
from .graphs import CUDAGraph, graph, graph_pool_handle, is_current_stream_capturing  # noqa: F401
from .memory import host_memory_stats, reset_peak_host_memory_stats  # noqa: F401
from .random import (  # noqa: F401
    get_rng_state,
    get_rng_state_all,
    initial_seed,
    seed,
    seed_all,
    set_rng_state,
    set_rng_state_all,
)
from .streams import (  # noqa: F401
    Event,
    ExternalStream,
    Stream,
    current_stream,
    default_stream,
    set_stream,
    stream,
)


def __getattr__(name):
    # vt.cuda.amp (torch.cuda.amp's deprecated spellings) sits on vibetensor.torch, which imports this package:
    # it is loaded on first use rather than here.
    if name == "amp":  # (import_module: "from . import amp" would look the attribute up here again first)
        import importlib
        return importlib.import_module(__name__ + ".amp")
    raise AttributeError(f"module 'vibetensor.cuda' has no attribute '{name}'")


def manual_seed(seed: int) -> None:
    """torch.cuda.manual_seed. vibetensor draws the random numbers of every device, the CPU included, from one
    Philox generator (counter-based, so a device's draws do not depend on its stream), so this seeds that one
    generator, as vt.manual_seed does."""
    from ..torch import manual_seed as _seed
    _seed(seed)


manual_seed_all = manual_seed  # one generator for every device (manual_seed's docstring)


def get_device_capability(device=None) -> tuple:
    """(major, minor) compute capability of the device (its physical GPU's under emulation)."""
    p = get_device_properties(device)
    return p.major, p.minor


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """torch.cuda.is_bf16_supported: a device of compute capability 8.0 or newer computes bfloat16 natively;
    older ones only through float32 arithmetic, which including_emulation accepts, as torch's does."""
    if not is_available():
        return False
    return get_device_capability()[0] >= 8 or including_emulation
