"""NVML facts through pynvml (nvidia-ml-py): link types, NVLink counts, P2P status, CPU/NUMA affinity,
virtualization and fabric state. Every query the platform does not support (common on virtual machines) is
recorded as unsupported instead of failing the probe."""
from __future__ import annotations

import ctypes
import os

from .host import cpu_list_to_str, pci_numa_node

# nvmlDeviceGetTopologyCommonAncestor levels -> nvidia-smi's link names.
_LEVELS = {0: "PIX", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}
_P2P_STATUS = {0: "OK", 1: "CHIPSET_NOT_SUPPORTED", 2: "GPU_NOT_SUPPORTED", 3: "IOH_TOPOLOGY_NOT_SUPPORTED",
               4: "DISABLED_BY_REGKEY", 5: "NOT_SUPPORTED", 6: "UNKNOWN"}
_P2P_CAPS = {"read": 0, "write": 1, "nvlink": 2, "atomics": 3}
_VIRT = {0: "none", 1: "passthrough", 2: "vgpu", 3: "host_vgpu", 4: "host_vsga"}
_MAX_NVLINKS = 18


class Nvml:
    """One NVML session; `unsupported` collects queries the platform declined."""

    def __init__(self):
        self.unsupported: list[str] = []
        self.error = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nv = pynvml
        except Exception as e:  # no library, no driver: the probe goes on without NVML
            self.nv = None
            self.error = f"NVML unavailable: {e}"

    def close(self):
        if self.nv is not None:
            try:
                self.nv.nvmlShutdown()
            except Exception:
                pass

    def _note(self, msg):
        if msg not in self.unsupported:
            self.unsupported.append(msg)

    def _try(self, what, fn, *args):
        try:
            return fn(*args)
        except Exception as e:
            self._note(f"{what}: {e}")
            return None

    @staticmethod
    def _str(v):
        return v.decode() if isinstance(v, bytes) else v

    def driver_version(self):
        return self._str(self._try("driver version", self.nv.nvmlSystemGetDriverVersion)) if self.nv else None

    def handle(self, bus_id: str):
        if self.nv is None:
            return None
        return self._try(f"handle for {bus_id}", self.nv.nvmlDeviceGetHandleByPciBusId, bus_id)

    def device_facts(self, h, bus_id: str) -> dict:
        out = {"cpu_affinity": None, "numa_node": pci_numa_node(bus_id), "virtualization_mode": None,
               "fabric": "unsupported"}
        if h is None:
            return out
        words = max(1, ((os.cpu_count() or 64) + 63) // 64)
        mask = self._try("CPU affinity", self.nv.nvmlDeviceGetCpuAffinity, h, words)
        if mask:
            cpus = [w * 64 + b for w, m in enumerate(mask) for b in range(64) if (int(m) >> b) & 1]
            out["cpu_affinity"] = cpu_list_to_str(cpus) if cpus else None
        if out["numa_node"] is None and hasattr(self.nv, "nvmlDeviceGetNumaNodeId"):
            node = self._try("NUMA node", self.nv.nvmlDeviceGetNumaNodeId, h)
            out["numa_node"] = node if isinstance(node, int) and node >= 0 else None
        mode = self._try("virtualization mode", self.nv.nvmlDeviceGetVirtualizationMode, h)
        out["virtualization_mode"] = _VIRT.get(mode, mode) if mode is not None else None
        if hasattr(self.nv, "nvmlDeviceGetGpuFabricInfo") and hasattr(self.nv, "c_nvmlGpuFabricInfo_t"):
            info = self.nv.c_nvmlGpuFabricInfo_t()
            try:  # reported only: vibetensor never enables fabric or multicast features
                self.nv.nvmlDeviceGetGpuFabricInfo(h, ctypes.byref(info))
                out["fabric"] = {"state": int(info.state), "status": int(info.status)}
            except Exception as e:
                self._note(f"GPU fabric info: {e}")
        return out

    def nvlink_peers(self, h) -> dict:
        """{remote bus id or "switch": link count, "_version": max version} for the device's active NVLinks."""
        out, version = {}, None
        if h is None:
            return out
        for link in range(_MAX_NVLINKS):
            try:
                if self.nv.nvmlDeviceGetNvLinkState(h, link) != 1:
                    continue
            except Exception as e:
                if link == 0:
                    self._note(f"NVLink state: {e}")
                break
            remote = self._try("NVLink remote", self.nv.nvmlDeviceGetNvLinkRemotePciInfo, h, link)
            kind = None
            if hasattr(self.nv, "nvmlDeviceGetNvLinkRemoteDeviceType"):
                kind = self._try("NVLink remote type", self.nv.nvmlDeviceGetNvLinkRemoteDeviceType, h, link)
            key = "switch" if kind == 1 else (self._str(remote.busId).upper() if remote is not None else None)
            if key:
                out[key] = out.get(key, 0) + 1
            v = self._try("NVLink version", self.nv.nvmlDeviceGetNvLinkVersion, h, link)
            version = max(version or 0, v or 0) or None
        if version:
            out["_version"] = version
        return out

    def pair_facts(self, h1, h2) -> dict:
        out = {"pcie_level": None, "nvml_p2p": None}
        if h1 is None or h2 is None:
            return out
        level = self._try("topology common ancestor", self.nv.nvmlDeviceGetTopologyCommonAncestor, h1, h2)
        out["pcie_level"] = _LEVELS.get(level) if level is not None else None
        status = {}
        for name, idx in _P2P_CAPS.items():
            v = self._try(f"P2P status ({name})", self.nv.nvmlDeviceGetP2PStatus, h1, h2, idx)
            status[name] = _P2P_STATUS.get(v, str(v)) if v is not None else "unsupported"
        out["nvml_p2p"] = status
        return out
