"""torch.autocast for vibetensor: a region in which matrix products run in bfloat16 or float16 and the ops that
need range run in float32, as torch's automatic mixed precision does.

The state is per thread and lives in the C++ core, where the dispatcher's autocast layer reads it for the ops with
a policy (vt/core/autocast.h); the Python composites with a policy (F.conv2d, F.mse_loss, ...) read it through
the wrappers in _composites.py. An ``autocast`` object saves the thread's state on entering and puts it back on
leaving, so regions nest, and a region with enabled=False turns autocast off inside an enclosing one.

Within the outermost region a weight's lower-precision cast is cached and reused while the weight is unchanged
(Note [Autocast cast cache] in vt/core/autocast.h); ``cache_enabled=False`` turns that off for a region.
"""
import functools
import threading
import warnings

from ..._C import autograd as _ag
from ..._C import core as _core

_DEVICE_TYPES = ("cpu", "cuda")
_SUPPORTED = {"cpu": (_core.dtype.bfloat16, _core.dtype.float16),
              "cuda": (_core.dtype.bfloat16, _core.dtype.float16)}


class _Regions:
    """How many autocast regions are open in any thread: while none is, the composite wrappers skip even the
    thread-state lookup. Counted under a lock: a lost update could leave it 0 while a region is open."""
    open = 0
    lock = threading.Lock()

    @classmethod
    def add(cls, n):
        with cls.lock:
            cls.open += n


def _index(device_type):
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if device_type not in _DEVICE_TYPES:
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
    return _DEVICE_TYPES.index(device_type)


def _dtype(d):
    if not isinstance(d, _core.dtype):
        raise TypeError(f"autocast: dtype must be a vibetensor dtype (vt.bfloat16, vt.float16), got {d!r}")
    return d


def is_autocast_available(device_type):
    """True for the device types vibetensor's autocast covers ("cpu" and "cuda")."""
    return device_type in _DEVICE_TYPES


def is_autocast_enabled(device_type="cuda"):
    """torch.is_autocast_enabled: whether this thread is inside an enabled region for `device_type`."""
    return bool(_ag._get_autocast()[_index(device_type)])


def get_autocast_dtype(device_type):
    """torch.get_autocast_dtype: the lower-precision dtype a region of `device_type` uses by default."""
    return _ag._get_autocast()[2 + _index(device_type)]


def set_autocast_enabled(device_type, enabled=None):
    """torch.set_autocast_enabled(device_type, enabled); the older form set_autocast_enabled(enabled) means CUDA."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    state = list(_ag._get_autocast())
    state[_index(device_type)] = bool(enabled)
    if enabled:  # a state set outside any region has no exit to count down at: the wrappers check from now on
        _Regions.add(1)
    _ag._set_autocast(*state)


def set_autocast_dtype(device_type, dtype):
    state = list(_ag._get_autocast())
    state[2 + _index(device_type)] = _dtype(dtype)
    _ag._set_autocast(*state)


def is_autocast_cache_enabled():
    """Whether this thread's regions cache the lower-precision casts of weights (Note [Autocast cast cache])."""
    return bool(_ag._get_autocast()[5])


def set_autocast_cache_enabled(enabled):
    state = list(_ag._get_autocast())
    state[5] = bool(enabled)
    _ag._set_autocast(*state)


def clear_autocast_cache():
    """Drops this thread's cached casts (the outermost region's exit does it too)."""
    _ag._clear_autocast_cache()


class autocast:
    """torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None): a context manager and decorator.
    Inside, the ops with a policy (module docstring) run in `dtype` (default: bfloat16 on CPU, float16 on CUDA)
    or float32. Backward passes run in the dtypes the forward chose, whether or not they are inside a region."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        self.device = device_type
        self._k = _index(device_type)
        self.fast_dtype = _ag._get_autocast()[2 + self._k] if dtype is None else _dtype(dtype)
        self._enabled = bool(enabled)
        self._cache_enabled = is_autocast_cache_enabled() if cache_enabled is None else bool(cache_enabled)
        if self._enabled and device_type == "cuda":
            from ... import cuda
            if not cuda.is_available():
                warnings.warn("User provided device_type of 'cuda', but CUDA is not available. Disabling")
                self._enabled = False
        if self._enabled and self.fast_dtype not in _SUPPORTED[device_type]:
            name = "CPU" if device_type == "cpu" else "CUDA"
            warnings.warn(f"In {name} autocast, but the target dtype is not supported. Disabling autocast.\n"
                          f"{name} Autocast only supports dtype of torch.bfloat16, torch.float16 currently.")
            self._enabled = False
        self._saved = []

    def __enter__(self):
        state = _ag._get_autocast()
        self._saved.append(state)
        new = list(state)
        new[self._k] = self._enabled
        if self._enabled:
            new[2 + self._k] = self.fast_dtype
        new[4] = False  # a region opened explicitly applies even where autocast was suspended (custom_bwd)
        new[5] = self._cache_enabled
        _ag._set_autocast(*new)
        _ag._autocast_increment_nesting()
        _Regions.add(1)
        return self

    def __exit__(self, exc_type, exc, tb):
        _Regions.add(-1)
        _ag._autocast_decrement_nesting()  # the outermost exit clears the cast cache
        _ag._set_autocast(*self._saved.pop())
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return func(*args, **kwargs)
        return wrapper


# torch's older spellings, still common in scripts and libraries
def is_autocast_cpu_enabled():
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled):
    set_autocast_enabled("cpu", enabled)


def get_autocast_cpu_dtype():
    return get_autocast_dtype("cpu")


def get_autocast_gpu_dtype():
    return get_autocast_dtype("cuda")


def set_autocast_cpu_dtype(dtype):
    set_autocast_dtype("cpu", dtype)


def set_autocast_gpu_dtype(dtype):
    set_autocast_dtype("cuda", dtype)
