"""torch-shaped CUDA streams and events.

    s = vt.cuda.Stream()                 # from the device's stream pool
    with vt.cuda.stream(s):              # tensors allocated and ops run on s inside
        y = x.to("cuda")
    vt.cuda.current_stream().wait_stream(s)
    x.record_stream(s)                   # x's memory is reused only after s passes its free

Each thread has its own current stream per device (initially the default stream). Ordering between streams
uses events, never a device synchronize.
"""
from __future__ import annotations

import contextlib

from .._C import cuda as _c


def _device_index(device) -> int:
    if device is None:
        return _c.current_device()
    if isinstance(device, int):
        return device
    from .._C import core

    d = device if isinstance(device, core.device) else core.device(device)
    return d.index if d.index is not None else _c.current_device()


class Stream:
    """A CUDA stream on one device: from the pool (default), or wrapping `stream_ptr` (not owned)."""

    def __init__(self, device=None, priority: int = 0, *, stream_ptr: int | None = None):
        self.device_index = _device_index(device)
        self.cuda_stream = int(stream_ptr) if stream_ptr is not None else _c.stream_from_pool(self.device_index, priority)
        self.priority = priority

    @property
    def device(self):
        from .._C import core

        return core.device(f"cuda:{self.device_index}")

    def query(self) -> bool:
        """True when all work queued on the stream has finished."""
        return _c.stream_query(self.cuda_stream, self.device_index)

    def synchronize(self) -> None:
        _c.stream_synchronize(self.cuda_stream, self.device_index)

    def wait_event(self, event: "Event") -> None:
        _c.stream_wait_event(self.cuda_stream, event._handle, self.device_index)

    def wait_stream(self, other: "Stream") -> None:
        """Work queued later on this stream waits for what `other` has queued so far."""
        self.wait_event(other.record_event())

    def record_event(self, event: "Event | None" = None) -> "Event":
        event = event or Event(device=self.device_index)
        event.record(self)
        return event

    def __cuda_stream__(self):  # the CUDA stream protocol: (version, handle)
        return (0, self.cuda_stream)

    def __eq__(self, other):
        return isinstance(other, Stream) and (self.cuda_stream, self.device_index) == (other.cuda_stream, other.device_index)

    def __hash__(self):
        return hash((self.cuda_stream, self.device_index))

    def __repr__(self):
        return f"<vibetensor.cuda.Stream device=cuda:{self.device_index} cuda_stream={self.cuda_stream:#x}>"


class ExternalStream(Stream):
    """A stream created elsewhere (another library's cudaStream_t); vibetensor never destroys it."""

    def __init__(self, stream_ptr: int, device=None):
        super().__init__(device, stream_ptr=stream_ptr)


class Event:
    """A CUDA event: record on a stream, wait from another, query, synchronize, and time (enable_timing)."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False, *,
                 device=None):
        if interprocess:
            raise NotImplementedError("interprocess events are not supported (one process is the Fabric's scope)")
        self.device_index = _device_index(device)
        self.enable_timing = enable_timing
        self._handle = _c.event_create(self.device_index, enable_timing, blocking)
        self._recorded = False

    def record(self, stream: Stream | None = None) -> None:
        stream = stream or current_stream(self.device_index)
        if stream.device_index != self.device_index:
            raise RuntimeError(f"Event on cuda:{self.device_index} cannot be recorded on a stream of "
                               f"cuda:{stream.device_index}")
        _c.event_record(self._handle, stream.cuda_stream, self.device_index)
        self._recorded = True

    def wait(self, stream: Stream | None = None) -> None:
        (stream or current_stream(self.device_index)).wait_event(self)

    def query(self) -> bool:
        return _c.event_query(self._handle)

    def synchronize(self) -> None:
        _c.event_synchronize(self._handle)

    def elapsed_time(self, end_event: "Event") -> float:
        """Milliseconds between this event and `end_event` (both recorded, both with enable_timing)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("elapsed_time needs both events created with enable_timing=True")
        if not (self._recorded and end_event._recorded):
            raise RuntimeError("elapsed_time needs both events recorded first")
        return _c.event_elapsed_ms(self._handle, end_event._handle)

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle:
            try:
                _c.event_destroy(handle, self.device_index)
            except Exception:
                pass


def current_stream(device=None) -> Stream:
    d = _device_index(device)
    return Stream(d, stream_ptr=_c.current_stream(d))


def default_stream(device=None) -> Stream:
    """The device's default stream: the legacy default stream, or under emulation the logical device's own."""
    d = _device_index(device)
    return Stream(d, stream_ptr=_c.default_stream(d))


def set_stream(stream: Stream) -> None:
    _c.set_current_stream(stream.device_index, stream.cuda_stream)


@contextlib.contextmanager
def stream(s: Stream | None):
    """Makes `s` the current stream of its device inside the block (None: no change)."""
    if s is None:
        yield
        return
    prev = _c.current_stream(s.device_index)
    _c.set_current_stream(s.device_index, s.cuda_stream)
    try:
        yield s
    finally:
        _c.set_current_stream(s.device_index, prev)
