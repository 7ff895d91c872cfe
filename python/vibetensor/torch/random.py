"""torch.random: the global random stream's seed and state (manual_seed, seed, initial_seed, get_rng_state,
set_rng_state), default_generator (that stream as a Generator) and fork_rng. vibetensor has one Philox stream
for every device, whose whole state is (seed, offset): get_rng_state returns it as an int64 tensor [seed, offset],
not torch's byte layout, and set_rng_state takes only such a tensor."""
import contextlib
import os

from .._C import core as _core
from ._generator import Generator, default_generator  # noqa: F401

_MASK = 0xFFFF_FFFF_FFFF_FFFF


def manual_seed(seed):
    """Seeds the global stream; any int in [-2**63, 2**64) is a seed (negative ones wrap), others are torch's
    ValueError. Returns default_generator, as torch does."""
    seed = int(seed)
    if not -0x8000_0000_0000_0000 <= seed <= _MASK:
        raise ValueError("Overflow when unpacking long long: manual_seed expected a seed in [-2**63, 2**64), "
                         f"got {seed}")
    _core.manual_seed(seed & _MASK)
    return default_generator


def seed():
    """Seeds the global stream from the operating system's randomness and returns the seed."""
    value = int.from_bytes(os.urandom(8), "little") >> 1
    _core.manual_seed(value)
    return value


def initial_seed():
    return _core.initial_seed()


def get_rng_state():
    """The global stream's state, an int64 tensor [seed, offset]."""
    return default_generator.get_state()


def set_rng_state(new_state):
    Tensor = _core.Tensor
    if not isinstance(new_state, Tensor) or new_state.dtype != _core.dtype.int64 or new_state.numel() != 2:
        raise TypeError("RNG state must be the int64 tensor [seed, offset] that get_rng_state returns (vibetensor's "
                        f"state is not torch's ByteTensor), got {type(new_state).__name__}"
                        + (f" of dtype {new_state.dtype} and {new_state.numel()} elements"
                           if isinstance(new_state, Tensor) else ""))
    default_generator.set_state(new_state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices", device_type=None):
    """Restores the global stream's state on exit, so draws inside leave the stream outside as it was. One state
    serves every device here, so `devices` and `device_type` select nothing."""
    if not enabled:
        yield
        return
    saved = _core.get_rng_state()
    try:
        yield
    finally:
        _core.set_rng_state(*saved)
