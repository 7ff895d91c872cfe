"""The live probe on a machine with GPUs, checked against nvidia-smi."""
import shutil
import subprocess

import pytest

import vibetensor.torch as vt
from vibetensor.topology import plan_rings, probe, render_text

pytestmark = pytest.mark.cuda


def nvidia_smi(query):
    if shutil.which("nvidia-smi") is None:
        pytest.skip("nvidia-smi not found")
    out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=True).stdout
    return [[c.strip() for c in line.split(",")] for line in out.strip().splitlines()]


def test_probe_matches_nvidia_smi():
    doc = probe()
    assert len(doc["devices"]) == vt.cuda.device_count()
    smi = {row[1].upper()[-12:]: row for row in nvidia_smi("name,pci.bus_id,memory.total,uuid")}
    for d in doc["devices"]:
        row = smi[d["pci_bus_id"].upper()[-12:]]
        assert row[0] == d["name"]
        assert row[3] == d["uuid"]
        assert abs(int(row[2]) * 2**20 - d["memory_bytes"]) < 2**30  # nvidia-smi reports MiB, minus reserves


def test_probe_pairs_and_rings():
    doc = probe()
    n = len(doc["devices"])
    assert len(doc["links"]) == n * (n - 1)
    for link in doc["links"]:
        assert link["p2p_functional"] in ("ok", "not-attempted") or link["p2p_functional"].startswith("failed")
    rings = plan_rings(doc)
    assert rings and sorted(rings[0]) == list(range(n))
    assert "GPU0" in render_text(doc, rings)


def test_measurement_paths_on_one_gpu():
    # The peer measurement code, run with src == dst so it works on a one-GPU machine: local copies.
    from vibetensor._C import topology as t

    assert t.ce_copy_gbps(0, 0, 8 << 20, 3, False) > 10
    assert t.ce_copy_gbps(0, 0, 8 << 20, 3, True) > 10
    assert t.sm_copy_gbps(0, 0, 8 << 20, 3, False) > 10
    assert 0.05 < t.peer_latency_us(0, 0, 2000) < 50
    assert t.host_to_device_gbps(0, 8 << 20, 3) > 1
    assert t.device_to_host_gbps(0, 8 << 20, 3) > 1


def test_cpu_affinity_matches_nvidia_smi_topo():
    doc = probe()
    out = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("GPU") and "\t" in line]
    for d in doc["devices"]:
        row = next((r for r in rows if r[0].endswith(f"GPU{d['index']}")), None)
        if row is None or d["cpu_affinity"] is None:
            continue
        assert d["cpu_affinity"] in row, (d["cpu_affinity"], row)
