"""The probe: CUDA (through the extension) plus NVML (through pynvml) plus the host, joined into one topology
document (schema.py). Nothing here is required to succeed: without a driver the document simply has no
devices and says why."""
from __future__ import annotations

import ctypes
import glob
import os
import sys

from .. import _C
from .host import host_info, numa_from_affinity
from .nvml import Nvml
from .schema import SCHEMA, validate


def _version_str(v: int):
    return f"{v // 1000}.{(v % 1000) // 10}" if v else None


def nccl_version():
    """NCCL's version if a libnccl can be loaded (system or a pip-installed nvidia-nccl wheel), else None."""
    candidates = ["libnccl.so.2"]
    for base in sys.path:
        candidates += glob.glob(os.path.join(base, "nvidia", "nccl", "lib", "libnccl.so*"))
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            v = ctypes.c_int()
            if lib.ncclGetVersion(ctypes.byref(v)) == 0:
                code = v.value
                return f"{code // 10000}.{(code % 10000) // 100}.{code % 100}" if code >= 10000 else str(code)
        except OSError:
            continue
    return None


def _link_type(nvlinks: int, pcie_level):
    if nvlinks > 0:
        return f"NV{nvlinks}"
    return pcie_level or "SYS"  # unknown path: assume the farthest, never better than the truth


def _emulated_link(s: int, t: int, p: dict) -> dict:
    """Two logical devices on one physical GPU (Note [Emulated devices]): native access, no NVML pair."""
    return {"src": s, "dst": t, "type": "EMU", "nvlinks": 0, "nvlink_version": None,
            "p2p_access": True, "p2p_atomics": True, "p2p_performance_rank": 0,
            "p2p_functional": p.get("functional", "not-attempted"), "nvml_p2p": {}}


def probe(functional_check: bool = True) -> dict:
    topo = _C.topology
    host = host_info()
    rt = topo.runtime_info()
    cuda_devices = topo.devices()
    emulated = _C.cuda.is_emulated()
    for d in cuda_devices:
        d["physical_device"] = _C.cuda.physical_device(d["index"])
    nvml = Nvml()
    try:
        handles = [nvml.handle(d["pci_bus_id"]) for d in cuda_devices]
        devices, nvlinks = [], []
        for d, h in zip(cuda_devices, handles):
            dev = dict(d)
            dev["compute_capability"] = list(d["compute_capability"])
            dev.update(nvml.device_facts(h, d["pci_bus_id"]))
            if dev["numa_node"] is None:
                dev["numa_node"] = numa_from_affinity(dev["cpu_affinity"], host["numa_nodes"])
            devices.append(dev)
            nvlinks.append(nvml.nvlink_peers(h))
        peers = {(p["src"], p["dst"]): p for p in topo.peers(functional_check)} if len(cuda_devices) > 1 else {}
        links = []
        for s, ds in enumerate(cuda_devices):
            for t, dt in enumerate(cuda_devices):
                if s == t:
                    continue
                if emulated and ds["physical_device"] == dt["physical_device"]:
                    links.append(_emulated_link(s, t, peers.get((s, t), {})))
                    continue
                pair = nvml.pair_facts(handles[s], handles[t])
                direct = nvlinks[s].get(dt["pci_bus_id"].upper(), 0)
                # Through NVSwitches every GPU reaches every other with its full set of switch links.
                switched = min(nvlinks[s].get("switch", 0), nvlinks[t].get("switch", 0))
                n_links = direct or switched
                p = peers.get((s, t), {})
                links.append({
                    "src": s, "dst": t,
                    "type": _link_type(n_links, pair["pcie_level"]),
                    "nvlinks": n_links,
                    "nvlink_version": nvlinks[s].get("_version") if n_links else None,
                    "p2p_access": bool(p.get("access_supported", False)),
                    "p2p_atomics": bool(p.get("native_atomics", False)),
                    "p2p_performance_rank": p.get("performance_rank"),
                    "p2p_functional": p.get("functional", "not-attempted"),
                    "nvml_p2p": pair["nvml_p2p"],
                })
        doc = {
            "schema": SCHEMA,
            "host": host,
            "driver": {
                "driver_version": nvml.driver_version(),
                "cuda_driver_version": _version_str(rt["driver_version"]),
                "cuda_runtime_version": _version_str(rt["runtime_version"]),
                "nccl_version": nccl_version(),
                "cuda_error": rt["error"] or None,
                "nvml_error": nvml.error,
            },
            "devices": devices,
            "links": links,
            "unsupported": nvml.unsupported,
        }
        if emulated:
            doc["emulated"] = _C.cuda.emulation_label()
    finally:
        nvml.close()
    return validate(doc)
