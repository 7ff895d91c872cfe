"""The Fabric: a set of CUDA devices of this process made ready to work together.

    with vt.fabric.Fabric() as fab:            # all devices; mode="strict" raises where P2P is not usable
        a = vt.randn(1 << 20, device="cuda:0")
        b = vt.randn(1 << 20, device="cuda:1")
        c = a + b                               # runs on cuda:0, reads b through the peer mapping
        print(fab.report())

Opening a Fabric decides, for every ordered pair (a reads b's memory), a route: "native" (two emulated devices
on one GPU), "p2p" (peer access enabled and verified by the functional check), or "staged" with a reason from a
fixed set (no_p2p, p2p_broken, disabled_by_user, peer_limit; capture_active is reported by the call that meets it).
It holds the peer mappings it enabled (refcounted in the core, Note [Peer mapping lifetime]) and publishes the
routes to the core's route table (Note [Route lifetime]); close() waits - bounded - for the work queued on its
devices, then releases both. While a Fabric is open, ops whose operands live on several of its devices run on
one of them (Note [Cross-device calls]); outside it they raise torch's mixed-device error.

The topology document (vibetensor.topology) is read when given (topology=doc or a path), or under emulation from
VT_EMULATE_TOPOLOGY=FILE.json, so that routes and link reasons follow a real machine's shape; without one, routes
come from the driver and the functional check alone (probing NVML would cost more than the whole setup).
"""
from __future__ import annotations

import os
import time

from .. import _C
from . import faults as _faults
from .errors import FabricError, FabricTimeoutError

_fab = _C.fabric
_open: list["Fabric"] = []
MODES = ("best_effort", "strict")


def _device_list(devices) -> list[int]:
    import vibetensor.cuda as vcuda

    n = vcuda.device_count()
    if not vcuda.is_available():
        raise FabricError(f"a Fabric needs CUDA devices: {vcuda.unavailable_reason()}")
    if devices is None:
        return list(range(n))
    out = []
    for d in devices:
        idx = d if isinstance(d, int) else _C.core.device(d).index if isinstance(d, str) else getattr(d, "index", d)
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise TypeError(f"Fabric devices must be ints, 'cuda:k' strings or devices, got {d!r}")
        if not 0 <= idx < n:
            raise FabricError(f"Fabric device cuda:{idx} does not exist: this process has {n} CUDA device(s)"
                              f"{' (' + vcuda.emulation_label() + ')' if vcuda.is_emulated() else ''}")
        if idx in out:
            raise FabricError(f"Fabric device cuda:{idx} is listed twice")
        out.append(idx)
    if not out:
        raise FabricError("a Fabric needs at least one device")
    return out


def _load_topology(topology):
    from .. import topology as topo

    if topology is None:
        path = os.environ.get("VT_EMULATE_TOPOLOGY")
        if not path:
            return None
        import vibetensor.cuda as vcuda

        if not vcuda.is_emulated():
            raise FabricError("VT_EMULATE_TOPOLOGY applies to emulated devices only (set VT_EMULATE_DEVICES too)")
        topology = path
    return topology if isinstance(topology, dict) and topo.validate(topology) else topo.load(topology)


class Fabric:
    def __init__(self, devices=None, mode: str = "best_effort", *, p2p: bool = True, topology=None, faults=None,
                 exclude_pairs=(), publish_routes: bool = True):
        t0 = time.perf_counter()
        if mode not in MODES:
            raise ValueError(f"Fabric mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.devices = _device_list(devices)
        self._device_set = frozenset(self.devices)  # fabric_for asks on every collective
        self.mode = mode
        import vibetensor.cuda as vcuda

        self.emulated = vcuda.is_emulated()
        self.emulation = vcuda.emulation_label()
        self.faults = faults if isinstance(faults, _faults.Faults) else _faults.parse(faults) if faults else _faults.from_env()
        self.topology = _load_topology(topology)
        if self.topology is not None and len(self.topology["devices"]) < max(self.devices) + 1:
            raise FabricError(f"the topology document describes {len(self.topology['devices'])} devices, fewer than "
                              f"this Fabric's cuda:{max(self.devices)} needs")
        self._links = {(l["src"], l["dst"]): l for l in self.topology["links"]} if self.topology else {}
        excluded = {(min(a, b), max(a, b)) for a, b in exclude_pairs}
        self.routes: dict[tuple[int, int], tuple[str, str]] = {}
        self._held_peers: list[tuple[int, int]] = []
        self._held_routes: list[tuple[int, int]] = []
        self.closed = False
        try:
            for a in self.devices:
                for b in self.devices:
                    if a != b:
                        self.routes[(a, b)] = self._decide(a, b, p2p, (min(a, b), max(a, b)) in excluded)
            staged = {k: v for k, v in self.routes.items() if v[0] == "staged"}
            if staged and mode == "strict":
                pairs = ", ".join(f"cuda:{a}->cuda:{b} ({why})" for (a, b), (_, why) in sorted(staged.items()))
                raise FabricError(f"strict Fabric: {len(staged)} pair(s) cannot use P2P: {pairs}")
            for (a, b), (kind, why) in self.routes.items() if publish_routes else ():
                _fab.hold_route(a, b, kind, why)
                self._held_routes.append((a, b))
        except BaseException:
            self._release()
            raise
        self._streams = {}
        _open.append(self)
        self.setup_seconds = time.perf_counter() - t0

    # -- routes -------------------------------------------------------------------------------------------
    def _decide(self, a: int, b: int, p2p: bool, excluded: bool) -> tuple[str, str]:
        if not p2p or excluded:
            return ("staged", "disabled_by_user")
        link = self._links.get((a, b))
        if link is not None and not link.get("p2p_access", False):
            return ("staged", "no_p2p")
        if link is not None and str(link.get("p2p_functional", "")).startswith("failed"):
            return ("staged", "p2p_broken")
        path = _C.cuda.peer_path(a, b)
        if path == "none":
            return ("staged", "no_p2p")
        if self.faults.pair_broken(a, b):
            return ("staged", "p2p_broken")
        try:
            _C.cuda.enable_peer_access(a, b)
        except RuntimeError:
            return ("staged", "peer_limit")
        self._held_peers.append((a, b))
        result = _C.cuda.check_peer_access(a, b)
        if not result.startswith("ok"):
            return ("staged", "p2p_broken")
        return ("native" if path == "native" else "p2p", "")

    def route(self, a: int, b: int) -> tuple[str, str]:
        """(kind, reason) for a kernel on cuda:a reading cuda:b's memory; kind is native, p2p or staged."""
        self._check_open()
        if (a, b) not in self.routes:
            raise FabricError(f"cuda:{a} -> cuda:{b} is not a pair of this Fabric (devices {self.devices})")
        return self.routes[(a, b)]

    def _any_staged(self, devices) -> bool:
        """Whether any pair among `devices` is staged (cached per device tuple: routes never change while open)."""
        key = tuple(devices)
        cache = self.__dict__.setdefault("_staged_cache", {})
        if key not in cache:
            cache[key] = any(self.routes[(a, b)][0] == "staged" for a in devices for b in devices if a != b)
        return cache[key]

    def link(self, a: int, b: int):
        """The topology document's link a -> b, or None without a document."""
        return self._links.get((a, b))

    @property
    def enabled_peer_pairs(self) -> int:
        """How many peer mappings this Fabric holds (counted, released on close)."""
        return len(self._held_peers)

    def stream(self, device: int):
        """A stream of the Fabric's own on `device` (from the device's pool), for work the user wants apart."""
        self._check_open()
        if device not in self.devices:
            raise FabricError(f"cuda:{device} is not a device of this Fabric (devices {self.devices})")
        if device not in self._streams:
            import vibetensor.cuda as vcuda

            self._streams[device] = vcuda.Stream(device)
        return self._streams[device]

    # -- observability -------------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counters per ordered pair of this Fabric and over all pairs (Note [Counter invariants])."""
        pairs = {(a, b): _fab.pair_counters(a, b) for (a, b) in self.routes}
        return {"pairs": pairs, "total": _fab.total_counters(), "emulated": self.emulation}

    def report(self) -> str:
        lines = [f"Fabric over {', '.join(f'cuda:{d}' for d in self.devices)} ({self.mode})"
                 + (f"  [{self.emulation}]" if self.emulated else "")]
        for (a, b), (kind, why) in sorted(self.routes.items()):
            link = self._links.get((a, b))
            lines.append(f"  cuda:{a} -> cuda:{b}: {kind}{' (' + why + ')' if why else ''}"
                         + (f"  link {link['type']}" if link else ""))
        lines.append(f"  setup {self.setup_seconds * 1e3:.1f} ms, {self.enabled_peer_pairs} peer mapping(s) held")
        return "\n".join(lines)

    # -- lifetime ------------------------------------------------------------------------------------------
    def _check_open(self):
        if self.closed:
            raise FabricError("this Fabric is closed")

    def synchronize(self, timeout: float | None = None) -> None:
        """Waits (bounded by `timeout` seconds) for the work queued so far on each device's current stream."""
        import vibetensor.cuda as vcuda

        events = [(d, vcuda.current_stream(d).record_event()) for d in self.devices]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pending = [d for d, e in events if not e.query()]
            if not pending:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise FabricTimeoutError(f"Fabric work still in flight after {timeout} s on "
                                         f"{', '.join(f'cuda:{d}' for d in pending)}; the Fabric stays open "
                                         f"(nothing was unmapped or freed)")
            time.sleep(50e-6)

    def close(self, timeout: float | None = 10.0) -> None:
        """Waits for queued work (raising FabricTimeoutError, and staying open, when it does not finish within
        `timeout` seconds), then releases routes and peer mappings. Idempotent."""
        if self.closed:
            return
        self.synchronize(timeout)
        self._release()

    def _release(self):
        for a, b in self._held_routes:
            _fab.release_route(a, b)
        self._held_routes.clear()
        for a, b in self._held_peers:
            _C.cuda.disable_peer_access(a, b)
        self._held_peers.clear()
        self.closed = True
        if self in _open:
            _open.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"Fabric(devices={self.devices}, mode={self.mode!r}{', emulated' if self.emulated else ''}"
                f"{', closed' if self.closed else ''})")


def open_fabrics() -> list[Fabric]:
    return list(_open)


_default: Fabric | None = None


def fabric_for(devices: list[int]) -> Fabric:
    """The innermost open Fabric covering `devices`; else a process-wide default Fabric over every device,
    opened on first use (best effort) and kept until exit. The default serves collectives only: it holds peer
    mappings but publishes no routes, so mixed-device ops outside an explicit Fabric still raise."""
    for f in reversed(_open):
        if f._device_set.issuperset(devices):
            return f
    global _default
    if _default is None or _default.closed:
        _default = Fabric(publish_routes=False)
    if not _default._device_set.issuperset(devices):
        raise FabricError(f"devices {devices} are not all in the default Fabric {_default.devices}")
    return _default
