"""Fault injection for tests of paths this hardware cannot produce on its own.

VT_FABRIC_FAULTS (or Fabric(faults=...)) is a comma-separated list:
  p2p_broken:A-B   the pair A -> B (and B -> A) claims P2P but fails the functional check: the Fabric routes it
                   through the staged fallback with reason p2p_broken (strict mode raises)
  hang:D           device D never arrives at a collective: a stall kernel occupies its stream for the timeout
                   plus a margin, and the collective ends in FabricTimeoutError naming cuda:D
An unknown entry raises ValueError naming it, so a typo cannot silently disable a test.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

_PAIR = re.compile(r"^p2p_broken:(\d+)-(\d+)$")
_HANG = re.compile(r"^hang:(\d+)$")


@dataclass
class Faults:
    broken_pairs: set = field(default_factory=set)  # unordered pairs as (min, max)
    hung_devices: set = field(default_factory=set)

    def pair_broken(self, a: int, b: int) -> bool:
        return (min(a, b), max(a, b)) in self.broken_pairs

    def __bool__(self):
        return bool(self.broken_pairs or self.hung_devices)


def parse(text: str | None) -> Faults:
    f = Faults()
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        if m := _PAIR.match(entry):
            a, b = int(m.group(1)), int(m.group(2))
            if a == b:
                raise ValueError(f"VT_FABRIC_FAULTS entry {entry!r}: a pair needs two different devices")
            f.broken_pairs.add((min(a, b), max(a, b)))
        elif m := _HANG.match(entry):
            f.hung_devices.add(int(m.group(1)))
        else:
            raise ValueError(f"VT_FABRIC_FAULTS entry {entry!r} is not one of p2p_broken:A-B, hang:D")
    return f


def from_env() -> Faults:
    return parse(os.environ.get("VT_FABRIC_FAULTS"))
