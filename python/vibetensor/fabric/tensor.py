"""FabricTensor: one logical tensor laid over a list of devices, replicated or sharded along one dim.

    ft = FabricTensor.shard(x, dim=0, devices=[0, 1, 2, 3])   # scatter: shard k on cuda:k
    y = (ft * 2 + 1).relu()                                     # elementwise ops run shard-wise, no traffic
    total = y.sum()                                             # reduction across shards: a local sum, then
                                                                # all_reduce -> a replicated 0-dim FabricTensor
    full = y.gather("cuda:0"); r = y.reshard(Replicate())

Invariants: shards are on distinct devices in `devices` order; for Shard(dim) shard k holds the k-th of
len(devices) near-equal slices (torch.chunk's split: sizes differ by at most one, larger ones first), for
Replicate() every shard holds the whole tensor and they are equal (collectives keep them bit-identical).
Operands of an elementwise op must have the same placement and devices (or be Python numbers).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import FabricError


@dataclass(frozen=True)
class Replicate:
    def __repr__(self):
        return "Replicate()"


@dataclass(frozen=True)
class Shard:
    dim: int

    def __repr__(self):
        return f"Shard({self.dim})"


def _vt():
    import vibetensor.torch as vt

    return vt


def _split_sizes(length: int, n: int) -> list[int]:
    base, extra = divmod(length, n)
    return [base + (1 if k < extra else 0) for k in range(n)]


class FabricTensor:
    def __init__(self, shards, placement, global_shape):
        self.shards = list(shards)
        self.placement = placement
        self.shape = tuple(global_shape)
        self.devices = [s.device.index for s in self.shards]
        if len(set(self.devices)) != len(self.devices):
            raise FabricError(f"FabricTensor shards must be on distinct devices, got {self.devices}")

    # -- construction ----------------------------------------------------------------------------------
    @staticmethod
    def replicate(t, devices):
        devices = [int(d) for d in devices]
        return FabricTensor([t.to(f"cuda:{d}") for d in devices], Replicate(), t.shape)

    @staticmethod
    def shard(t, dim: int, devices):
        devices = [int(d) for d in devices]
        dim = dim % t.dim() if t.dim() else 0
        sizes = _split_sizes(t.shape[dim], len(devices))
        pieces, start = [], 0
        for d, size in zip(devices, sizes):
            pieces.append(t.narrow(dim, start, size).contiguous().to(f"cuda:{d}"))
            start += size
        return FabricTensor(pieces, Shard(dim), t.shape)

    scatter = shard

    @staticmethod
    def from_shards(shards, placement):
        if isinstance(placement, Shard):
            shape = list(shards[0].shape)
            shape[placement.dim] = sum(s.shape[placement.dim] for s in shards)
            return FabricTensor(shards, placement, shape)
        return FabricTensor(shards, placement, shards[0].shape)

    # -- access ----------------------------------------------------------------------------------------
    def local(self, k: int):
        """The shard on the k-th device of this tensor (not cuda:k: index into .devices)."""
        return self.shards[k]

    def gather(self, device="cpu"):
        """The whole tensor on one device."""
        vt = _vt()
        if isinstance(self.placement, Replicate):
            return self.shards[0].to(device)
        return vt.cat([s.to(device) for s in self.shards], dim=self.placement.dim)

    def reshard(self, placement):
        if placement == self.placement:
            return self
        if isinstance(placement, Replicate):
            full = self.gather(f"cuda:{self.devices[0]}")
            return FabricTensor.replicate(full, self.devices)
        return FabricTensor.shard(self.gather(f"cuda:{self.devices[0]}"), placement.dim, self.devices)

    # -- ops -------------------------------------------------------------------------------------------
    def _zip(self, other, fn):
        if isinstance(other, FabricTensor):
            if other.placement != self.placement or other.devices != self.devices or other.shape != self.shape:
                raise FabricError(f"FabricTensor operands differ: {self.placement} on {self.devices} {list(self.shape)} "
                                  f"vs {other.placement} on {other.devices} {list(other.shape)}; reshard first")
            return FabricTensor([fn(a, b) for a, b in zip(self.shards, other.shards)], self.placement, self.shape)
        return FabricTensor([fn(a, other) for a in self.shards], self.placement, self.shape)

    def __add__(self, o): return self._zip(o, lambda a, b: a + b)
    def __radd__(self, o): return self._zip(o, lambda a, b: b + a)
    def __sub__(self, o): return self._zip(o, lambda a, b: a - b)
    def __rsub__(self, o): return self._zip(o, lambda a, b: b - a)
    def __mul__(self, o): return self._zip(o, lambda a, b: a * b)
    def __rmul__(self, o): return self._zip(o, lambda a, b: b * a)
    def __truediv__(self, o): return self._zip(o, lambda a, b: a / b)
    def __neg__(self): return self.map(lambda a: -a)

    def map(self, fn):
        """Applies an elementwise function shard by shard."""
        return FabricTensor([fn(s) for s in self.shards], self.placement, self.shape)

    def relu(self): return self.map(lambda a: a.relu())
    def exp(self): return self.map(lambda a: a.exp())
    def float(self): return self.map(lambda a: a.float())

    def sum(self):
        """Sum of all elements, replicated on every device (a local sum, then all_reduce for shards)."""
        from .collectives import all_reduce

        partial = [s.sum() for s in self.shards]
        if isinstance(self.placement, Shard) and len(partial) > 1:
            all_reduce([p.reshape(1) for p in partial])
        return FabricTensor(partial, Replicate(), ())

    def __repr__(self):
        return f"FabricTensor(shape={list(self.shape)}, {self.placement}, devices={self.devices})"
