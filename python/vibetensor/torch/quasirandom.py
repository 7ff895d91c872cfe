"""torch.quasirandom.SobolEngine: (scrambled) Sobol sequences, as torch's - the same unscrambled points, state
(sobolstate, quasi, shift), draw / draw_base2 / fast_forward / reset semantics and errors. Point k of the sequence
is the XOR of the direction numbers selected by the bits of k's Gray code (torch's recurrence flips one per point),
so a draw computes its points at once in numpy, 30 XOR passes over n x dimension integers. The direction numbers
(Joe and Kuo's D(6) table, as torch's) are carried for dimensions up to 1024; torch's go to 21201.

Scrambling (Owen's linear matrix scramble plus a digital shift, as torch's) draws its random bits from
vibetensor's generator, so scrambled points are equally valid but not torch's bit for bit (the random streams
differ, as for every vibetensor sampler)."""
from __future__ import annotations

import numpy as np


_MAXBIT = 30
_CARRIED = 1024
_ROWS = []  # the unscaled direction numbers of each dimension, computed on first use


def _state_rows(dimension):
    """sobolstate's rows before the scaling by 2^(29 - j): the direction numbers v_1 .. v_30 per dimension."""
    if len(_ROWS) >= dimension:
        return _ROWS[:dimension]
    from ._sobol_directions import DIRECTIONS

    entries = [e.split() for e in DIRECTIONS.replace("\n", "").split(",") if e]
    if not _ROWS:
        _ROWS.append([1] * _MAXBIT)  # van der Corput: every direction number 1
    for entry in entries[len(_ROWS) - 1:dimension - 1]:
        p, init = int(entry[0]), [int(x) for x in entry[1:]]
        m = p.bit_length() - 1
        v = init + [0] * (_MAXBIT - m)
        for j in range(m, _MAXBIT):  # the recurrence of the primitive polynomial p
            new = v[j - m]
            for k in range(m):
                if (p >> (m - 1 - k)) & 1:
                    new ^= v[j - k - 1] << (k + 1)
            v[j] = new
        _ROWS.append(v)
    return _ROWS[:dimension]


def _parity(x):
    for s in (16, 8, 4, 2, 1):
        x = x ^ (x >> s)
    return x & 1


class SobolEngine:
    MAXBIT = _MAXBIT
    MAXDIM = 21201

    def __init__(self, dimension, scramble=False, seed=None):
        if dimension > self.MAXDIM or dimension < 1:
            raise ValueError(f"Supported range of dimensionality for SobolEngine is [1, {self.MAXDIM}]")
        if dimension > _CARRIED:
            raise NotImplementedError(f"vibetensor's SobolEngine carries direction numbers for up to {_CARRIED} "
                                      f"dimensions, got {dimension}")
        self.seed, self.scramble, self.dimension = seed, scramble, dimension
        rows = np.array(_state_rows(dimension), dtype=np.int64)
        self._state = rows * (np.int64(2) ** np.arange(_MAXBIT - 1, -1, -1, dtype=np.int64))
        self._shift = np.zeros(dimension, dtype=np.int64)
        if scramble:
            self._scramble()
        self.sobolstate = _tensor(self._state)
        self.shift = _tensor(self._shift)
        self.quasi = self.shift.clone()
        self._first_point = (self.quasi / 2 ** self.MAXBIT).reshape(1, -1)
        self.num_generated = 0

    def _points(self, start, n):
        """Points start .. start + n - 1 as integers [n, dimension]."""
        k = np.arange(start, start + n, dtype=np.int64)
        gray = k ^ (k >> 1)
        pts = np.broadcast_to(self._shift, (n, self.dimension)).copy()
        for b in range(_MAXBIT):
            pts ^= ((gray >> b) & 1)[:, None] * self._state[:, b]
        return pts

    def _set_quasi(self):
        if self.num_generated > 0:
            self.quasi = _tensor(self._points(self.num_generated - 1, 1)[0])

    def draw(self, n=1, out=None, dtype=None):
        from . import _functions as F
        from . import get_default_dtype

        dtype = get_default_dtype() if dtype is None else dtype
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}, {self.dimension}]")
        values = self._points(self.num_generated, n).astype(np.float64) * (1.0 / 2 ** _MAXBIT)
        result = _tensor(values).to(dtype)
        if self.num_generated == 0 and n > 0:  # torch's first point: the shift divided in the default dtype
            result = F.cat([self._first_point.to(dtype), result[1:]], dim=-2)
        self.num_generated += n
        self._set_quasi()
        if out is not None:
            if tuple(out.shape) != tuple(result.shape):
                out.resize_(*result.shape)
            out.copy_(result)
            return out
        return result

    def draw_base2(self, m, out=None, dtype=None):
        n = 2 ** m
        total_n = self.num_generated + n
        if not (total_n & (total_n - 1) == 0):
            raise ValueError("The balance properties of Sobol' points require n to be a power of 2. "
                             f"{self.num_generated} points have been previously generated, then: "
                             f"n={self.num_generated}+2**{m}={total_n}. If you still want to do this, please use "
                             "'SobolEngine.draw()' instead.")
        return self.draw(n=n, out=out, dtype=dtype)

    def reset(self):
        self.quasi.copy_(self.shift)
        self.num_generated = 0
        return self

    def fast_forward(self, n):
        self.num_generated += n
        self._set_quasi()
        return self

    def _scramble(self):
        """A random lower-triangular (unit diagonal) binary matrix per dimension applied to the direction
        numbers' bits, and a random digital shift."""
        from . import _functions as F
        from ._generator import Generator

        g = Generator()
        if self.seed is not None:
            g.manual_seed(self.seed)
        d = self.dimension
        shift_bits = F.randint(2, (d, _MAXBIT), generator=g).numpy().astype(np.int64)
        self._shift = (shift_bits * (np.int64(2) ** np.arange(_MAXBIT, dtype=np.int64))).sum(1)
        ltm = np.tril(F.randint(2, (d, _MAXBIT, _MAXBIT), generator=g).numpy().astype(np.int64))
        ltm[:, np.arange(_MAXBIT), np.arange(_MAXBIT)] = 1
        rows = (ltm * (np.int64(2) ** np.arange(_MAXBIT - 1, -1, -1, dtype=np.int64))).sum(-1)  # [d, 30]
        new = np.zeros_like(self._state)
        for p in range(_MAXBIT):  # bit 29 - p of each scrambled number: the parity of row p AND the number
            new |= _parity(rows[:, p:p + 1] & self._state) << (_MAXBIT - 1 - p)
        self._state = new

    def __repr__(self):
        fmt = [f"dimension={self.dimension}"]
        if self.scramble:
            fmt += ["scramble=True"]
        if self.seed is not None:
            fmt += [f"seed={self.seed}"]
        return self.__class__.__name__ + "(" + ", ".join(fmt) + ")"


def _tensor(a):
    from . import _functions as F

    return F.from_numpy(np.ascontiguousarray(a))
