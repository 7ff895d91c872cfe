"""torch.cuda.random: the CUDA random state (get_rng_state, get_rng_state_all, set_rng_state, set_rng_state_all,
seed, seed_all, initial_seed), as training loops save and restore it with their checkpoints.

vibetensor draws the random numbers of every device, the CPU included, from one Philox stream (manual_seed's
docstring in vibetensor/cuda/__init__.py), so each device's state here is that stream's state: the int64 tensor
[seed, offset] of vt.get_rng_state(), not torch's per-device ByteTensor. A checkpoint that saves the CPU state
and every device's state at one moment and restores them together (what training scripts do) therefore
restores the stream exactly.

Without a usable CUDA device, as torch without one: get_rng_state_all() is [], set_rng_state, set_rng_state_all,
seed and seed_all do nothing (torch defers them to a CUDA initialisation that never comes), and get_rng_state
and initial_seed raise RuntimeError (they need a device).
"""
from .._C import core as _core

__all__ = ["get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "seed", "seed_all",
           "initial_seed"]


def _check_device(device, caller):
    """The CUDA index `device` names (None: the current device); RuntimeError without CUDA or for a bad index."""
    from . import current_device, device_count, is_available, unavailable_reason

    if device is None or isinstance(device, int):
        index = device
    else:
        d = device if isinstance(device, _core.device) else _core.device(device)
        if d.type != "cuda":
            raise ValueError(f"{caller}: expected a CUDA device, got {d}")
        index = d.index
    if not is_available():
        raise RuntimeError(f"{caller}: no CUDA device is available ({unavailable_reason()})")
    if index is None:
        index = current_device()
    if not 0 <= index < device_count():
        raise RuntimeError(f"{caller}: CUDA device {index} does not exist ({device_count()} device(s))")
    return index


def _random():
    from ..torch import random  # vibetensor.torch imports this package: resolved at call time
    return random


def get_rng_state(device="cuda"):
    """The random state of CUDA device `device`: the shared stream's [seed, offset] (module docstring)."""
    _check_device(device, "get_rng_state")
    return _random().get_rng_state()


def get_rng_state_all():
    from . import device_count, is_available

    return [get_rng_state(i) for i in range(device_count())] if is_available() else []


def set_rng_state(new_state, device="cuda"):
    """Sets the shared stream to `new_state` (an int64 [seed, offset] tensor); nothing without CUDA, as torch."""
    from . import is_available

    if not is_available():
        return
    _check_device(device, "set_rng_state")
    _random().set_rng_state(new_state)


def set_rng_state_all(new_states):
    for i, state in enumerate(new_states):
        set_rng_state(state, i)


def seed():
    """Seeds the shared stream from the operating system's randomness; nothing without CUDA, as torch."""
    from . import is_available

    if is_available():
        _random().seed()


seed_all = seed  # one stream for every device


def initial_seed():
    _check_device(None, "initial_seed")
    return _random().initial_seed()
