"""torch.Generator: an independent random stream for the functions that take generator= (rand, randn, randint,
randperm, multinomial, normal_, uniform_, random_ and the DataLoader's shuffling).

vibetensor draws from one counter-based Philox generator whose whole state is (seed, offset): every draw takes
the numbers at the offset and advances it. A Generator holds a state of its own; a draw that names it swaps that
state in, draws, keeps the advanced state and puts the global one back (Note [Generator swap]), so the global
stream is untouched and a seeded Generator gives the same numbers however much else was drawn meanwhile.

Note [Generator swap]: the swap is not atomic: another thread drawing from the global generator during it would
draw from this one's state. Threads that draw at once should each use their own Generator for every draw.
"""
from __future__ import annotations

import contextlib
import os

from .._C import core as _core


class Generator:
    """A Philox stream of its own, seeded by manual_seed (default seed 67280421310721, torch's)."""

    def __init__(self, device="cpu"):
        from ._functions import _device

        self.device = _device(device) if not isinstance(device, _core.device) else device
        self._seed, self._offset = 67280421310721, 0

    def manual_seed(self, seed):
        seed = int(seed)
        if not -0x8000_0000_0000_0000 <= seed <= 0xFFFF_FFFF_FFFF_FFFF:
            raise RuntimeError(f"Overflow when unpacking long long: manual_seed expected a seed in [-2**63, 2**64), "
                               f"got {seed}")
        self._seed, self._offset = seed & 0xFFFFFFFFFFFFFFFF, 0
        return self

    def seed(self):
        """Seeds from the operating system's randomness; returns the seed."""
        self.manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
        return self._seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The state as an int64 tensor [seed, offset] (torch's is a byte tensor of its own layout)."""
        from ._functions import tensor

        return tensor([self._seed - (1 << 64) if self._seed >= 1 << 63 else self._seed, self._offset])

    def set_state(self, state):
        seed, offset = (int(v) for v in state.tolist())
        self._seed, self._offset = seed & 0xFFFFFFFFFFFFFFFF, offset
        return self

    def __repr__(self):
        return f"<vibetensor.Generator object, device {self.device}>"


class _GlobalGenerator(Generator):
    """torch.default_generator: the global stream itself. Its seed and offset are the core's, so a draw through it
    is a plain global draw (and torch.manual_seed returns it: `generator = torch.manual_seed(0)`)."""

    def __init__(self):  # no state of its own to initialize
        self.device = _core.device("cpu")

    @property
    def _seed(self):
        return _core.get_rng_state()[0]

    @_seed.setter
    def _seed(self, value):
        _core.set_rng_state(value, _core.get_rng_state()[1])

    @property
    def _offset(self):
        return _core.get_rng_state()[1]

    @_offset.setter
    def _offset(self, value):
        _core.set_rng_state(_core.get_rng_state()[0], value)

    def initial_seed(self):
        return _core.initial_seed()


default_generator = _GlobalGenerator()


@contextlib.contextmanager
def drawing_from(generator):
    """Draws inside run on `generator`'s stream (Note [Generator swap]); None or default_generator: the global
    one."""
    if generator is None or generator is default_generator:
        yield
        return
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a vibetensor Generator, got {type(generator).__name__}")
    saved = _core.get_rng_state()
    _core.set_rng_state(generator._seed, generator._offset)
    try:
        yield
    finally:
        generator._seed, generator._offset = _core.get_rng_state()
        _core.set_rng_state(*saved)


def draw(generator, fill, t, *args):
    """fill(t, *args) drawing from `generator`; None calls it straight (no context manager: a factory's hot path)."""
    if generator is None:
        return fill(t, *args)
    with drawing_from(generator):
        return fill(t, *args)
