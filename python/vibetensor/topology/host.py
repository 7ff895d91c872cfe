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


def cpu_str_to_set(text: str) -> set[int]:
    """"0-2,5" -> {0, 1, 2, 5}."""
    out = set()
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def numa_from_affinity(cpu_affinity, nodes):
    """The NUMA node whose CPUs the GPU's CPU affinity lies in (how nvidia-smi fills NUMA Affinity when the
    PCI device does not say), or None when it is not exactly one node."""
    if not cpu_affinity:
        return None
    cpus = cpu_str_to_set(cpu_affinity)
    hits = [n["node"] for n in nodes if cpus & cpu_str_to_set(n["cpus"])]
    return hits[0] if len(hits) == 1 else None


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
    domain, _, rest = bus_id.lower().partition(":")
    try:
        name = f"{int(domain, 16):04x}:{rest}"  # sysfs writes the domain with at least 4 digits
    except ValueError:
        return None
    path = Path("/sys/bus/pci/devices") / name
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
