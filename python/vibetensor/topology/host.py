"""Host facts for the topology document: name, CPUs and NUMA nodes (from /sys where Linux provides it)."""
from __future__ import annotations

import os
import platform
import socket
from pathlib import Path


def cpu_list_to_str(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (the format of /sys cpulist and nvidia-smi's CPU Affinity)."""
    cpus = sorted(set(cpus))
    out, start = [], None
    for i, c in enumerate(cpus):
        if start is None:
            start = c
        if i + 1 == len(cpus) or cpus[i + 1] != c + 1:
            out.append(f"{start}-{c}" if c != start else f"{c}")
            start = None
    return ",".join(out)


def numa_nodes() -> list[dict]:
    root = Path("/sys/devices/system/node")
    nodes = []
    for d in sorted(root.glob("node[0-9]*"), key=lambda p: int(p.name[4:])):
        try:
            cpus = (d / "cpulist").read_text().strip()
        except OSError:
            continue
        nodes.append({"node": int(d.name[4:]), "cpus": cpus})
    return nodes


def pci_numa_node(bus_id: str):
    """NUMA node of a PCI device from sysfs, or None (-1 or absent: the platform does not say)."""
    path = Path("/sys/bus/pci/devices") / bus_id.lower()[-12:]
    try:
        v = int((path / "numa_node").read_text())
    except (OSError, ValueError):
        return None
    return v if v >= 0 else None


def host_info() -> dict:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numa_nodes": numa_nodes(),
    }
