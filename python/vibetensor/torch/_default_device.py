"""torch's default device: set_default_device / get_default_device, and `with vt.device(...):` as a context
manager, both of which make factory functions called without a device= (zeros, ones, empty, full, rand, randn,
randint, arange, eye, linspace, tensor, ..., and so nn modules' parameters) allocate on that device.

The state is per thread, as torch's. A `with` block's device takes precedence over set_default_device's while the
block runs; nested blocks stack. vt.device is the C++ device type: its __enter__/__exit__ are attached from here.
Nothing is checked when the default is set beyond parsing the device (as torch: a device this machine lacks
fails at the first factory call, naming the device).
"""
import threading

from .._C import core as _core

class _State(threading.local):
    """Each thread's own: the `with` stack and the set_default_device device. Initialised per thread, so reading
    them never takes the (slow) missing-attribute path: factories read them on every call."""

    def __init__(self):
        self.stack = []
        self.default = None


_local = _State()
# Whether any thread has ever set a default device or entered a device block: until then (the usual case) the
# factories skip the thread-local reads altogether (the C++ ones test a flag, Note [Factory hooks]).
ever_set = [False]


def _mark_used():
    if not ever_set[0]:
        ever_set[0] = True
        _core._default_device_used()


def current():
    """The device factories use when called without one, or None (the CPU, with no default set)."""
    stack = _local.stack
    return stack[-1] if stack else _local.default


def _parse(device):
    if isinstance(device, _core.device):
        return device
    if isinstance(device, int):  # torch: a bare index means that CUDA device
        return _core.device("cuda", device)
    if not isinstance(device, str):
        raise TypeError(f"set_default_device(): expected a device, a string or an int, not {type(device).__name__}")
    return _core.device(device)


def set_default_device(device):
    """Sets the device that factory functions use when called without device= (in this thread); None goes back
    to the CPU."""
    _local.default = None if device is None else _parse(device)
    if device is not None:
        _mark_used()


def get_default_device():
    """The device factory functions called without device= use: a CUDA default without an index reads as the
    current CUDA device's index."""
    dev = current()
    if dev is None:
        return _core.device("cpu")
    if dev.type == "cuda" and dev.index is None:
        from .. import cuda

        return _core.device("cuda", cuda.current_device())
    return dev


def _enter(self):
    _mark_used()
    _local.stack.append(self)
    return self


def _exit(self, *exc):
    stack = _local.stack
    if stack and stack[-1] is self:
        stack.pop()
    else:  # exited out of order: drop the innermost entry for this device
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is self:
                del stack[i]
                break
    return False


_core.device.__enter__ = _enter
_core.device.__exit__ = _exit
