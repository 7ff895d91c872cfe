"""Text views of a topology document: the link matrix of `nvidia-smi topo -m` with CPU/NUMA affinity, a P2P
matrix (access, atomics, functional check), the device list, rings and measurements. Plain text always
renders identically (golden tests pin it); `vt-fabric` shows the same rows as rich tables on a terminal."""
from __future__ import annotations

from .schema import EMU_LEGEND, LEGEND, link_map

P2P_LEGEND = (
    ("OK", "peer access works (functional check passed)"),
    ("OK+A", "as OK, with native atomics"),
    ("UNCHK", "peer access reported, functional check not run"),
    ("BROKEN", "peer access reported but the functional check failed"),
    ("NS", "peer access not supported: copies are staged through the host"),
)


def p2p_cell(link: dict) -> str:
    f = str(link.get("p2p_functional", "not-attempted"))
    if not link.get("p2p_access"):
        return "NS"
    if f.startswith("failed"):
        return "BROKEN"
    if f != "ok":
        return "UNCHK"
    return "OK+A" if link.get("p2p_atomics") else "OK"


def link_matrix(doc: dict):
    """(header, rows) of the link-type matrix with affinity columns."""
    n = len(doc["devices"])
    links = link_map(doc)
    header = [""] + [f"GPU{i}" for i in range(n)] + ["CPU Affinity", "NUMA Affinity"]
    rows = []
    for s, d in enumerate(doc["devices"]):
        cells = ["X" if s == t else links[(s, t)]["type"] for t in range(n)]
        numa = d.get("numa_node")
        rows.append([f"GPU{s}", *cells, d.get("cpu_affinity") or "N/A", "N/A" if numa is None else str(numa)])
    return header, rows


def p2p_matrix(doc: dict):
    n = len(doc["devices"])
    links = link_map(doc)
    header = [""] + [f"GPU{i}" for i in range(n)]
    rows = [[f"GPU{s}", *("X" if s == t else p2p_cell(links[(s, t)]) for t in range(n))] for s in range(n)]
    return header, rows


def device_rows(doc: dict):
    header = ["GPU", "Name", "CC", "SMs", "Memory", "PCI Bus ID", "UUID"]
    rows = []
    for d in doc["devices"]:
        cc = d.get("compute_capability") or ["?", "?"]
        mem = d.get("memory_bytes")
        rows.append([str(d["index"]), d["name"], f"{cc[0]}.{cc[1]}", str(d.get("sm_count", "?")),
                     f"{mem / 2**30:.1f} GiB" if mem else "?", d["pci_bus_id"], d.get("uuid", "?")])
    return header, rows


def table_text(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), *(line(r) for r in rows)])


def legend_text(items) -> str:
    return "\n".join(f"  {k:<6} = {v}" for k, v in items)


def summary_lines(doc: dict) -> list[str]:
    drv = doc["driver"]
    host = doc["host"]
    parts = [f"host {host.get('hostname', '?')}: {host.get('cpu_count', '?')} CPUs, "
             f"{len(host.get('numa_nodes') or []) or '?'} NUMA node(s)"]
    versions = [f"driver {drv['driver_version']}" if drv.get("driver_version") else None,
                f"CUDA {drv['cuda_driver_version']}" if drv.get("cuda_driver_version") else None,
                f"NCCL {drv['nccl_version']}" if drv.get("nccl_version") else None]
    versions = [v for v in versions if v]
    if versions:
        parts.append(", ".join(versions))
    modes = {d.get("virtualization_mode") for d in doc["devices"]} - {None, "none"}
    if modes:
        parts.append(f"virtualization: {', '.join(sorted(modes))}")
    if doc.get("emulated"):
        parts.append(f"EMULATED DEVICES ({doc['emulated']})")
    return parts


def no_gpu_text(doc: dict) -> str:
    drv = doc["driver"]
    reason = drv.get("cuda_error") or drv.get("nvml_error") or "no CUDA device found"
    lines = [f"No NVIDIA GPU found: {reason}."]
    lines += summary_lines(doc)
    for node in doc["host"].get("numa_nodes") or []:
        lines.append(f"  NUMA node {node['node']}: CPUs {node['cpus']}")
    return "\n".join(lines)


def render_text(doc: dict, rings=None) -> str:
    """The whole report as plain text."""
    if not doc["devices"]:
        return no_gpu_text(doc)
    out = ["\n".join(summary_lines(doc)), "", table_text(*device_rows(doc)), "", table_text(*link_matrix(doc)),
           "", "Legend:", "", legend_text(LEGEND + ((EMU_LEGEND,) if doc.get("emulated") else ())), "", "P2P (access / atomics / functional check):", "",
           table_text(*p2p_matrix(doc)), "", legend_text(P2P_LEGEND)]
    if rings is not None:
        out += ["", rings_text(doc, rings)]
    if doc.get("measurements"):
        out += ["", measurements_text(doc["measurements"])]
    if doc.get("unsupported"):
        out += ["", "Not supported on this platform: " + "; ".join(doc["unsupported"])]
    return "\n".join(out)


def rings_text(doc: dict, rings) -> str:
    from .rings import ring_bottleneck

    if len(doc["devices"]) < 2:
        return "Rings: fewer than 2 GPUs, nothing to plan."
    lines = [f"Rings ({len(rings)}):"]
    for k, ring in enumerate(rings):
        weakest = ring_bottleneck(doc, ring)
        path = " -> ".join(f"GPU{i}" for i in [*ring, ring[0]])
        lines.append(f"  ring {k}: {path}   (weakest link {weakest['type']})")
    return "\n".join(lines)


def measurements_text(m: dict) -> str:
    lines = [f"Measurements ({m.get('conventions', '')}):"]
    n = len(m.get("host_to_device_gbps", []))
    for key, title in (("ce_unidir_gbps", "Copy-engine peer bandwidth, unidirectional (GB/s)"),
                       ("ce_bidir_gbps", "Copy-engine peer bandwidth, bidirectional (GB/s)"),
                       ("sm_unidir_gbps", "SM peer bandwidth, unidirectional (GB/s)"),
                       ("sm_bidir_gbps", "SM peer bandwidth, bidirectional (GB/s)"),
                       ("latency_us", "Peer latency (us per dependent load)")):
        mat = m.get(key)
        if not mat or n < 2:
            continue
        header = ["src\\dst"] + [f"GPU{j}" for j in range(n)]
        rows = [[f"GPU{i}", *("-" if v is None else f"{v:.2f}" for v in row)] for i, row in enumerate(mat)]
        lines += ["", title, table_text(header, rows)]
    header = ["GPU", "H2D GB/s", "D2H GB/s", "D2D local GB/s"]
    rows = [[str(i), f"{m['host_to_device_gbps'][i]:.1f}", f"{m['device_to_host_gbps'][i]:.1f}",
             f"{m['device_local_gbps'][i]:.1f}"] for i in range(n)]
    lines += ["", "Host and local copies", table_text(header, rows)]
    return "\n".join(lines)
