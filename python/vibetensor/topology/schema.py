"""The topology document: what the probe writes and every algorithm, the renderer and the CLI read.

A versioned JSON object (`schema: "vibetensor.topology/1"`) with `host`, `driver`, `devices[]`, `links[]`
(one per ordered pair of distinct devices), `unsupported[]` (platform queries that answered "not supported")
and optional `measurements`. `load()` validates every rule below and raises TopologyError naming the first
violation, so algorithms can trust what they get.
"""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

SCHEMA = "vibetensor.topology/1"

# NCCL-style total order of link types, best first. NV<n> ranks above every PCIe path and by link count.
PCIE_LEVELS = ("PIX", "PXB", "PHB", "NODE", "SYS")
_NV = re.compile(r"^NV([1-9][0-9]?)$")

LEGEND = (
    ("X", "Self"),
    ("SYS", "Connection traversing PCIe as well as the SMP interconnect between NUMA nodes (e.g., QPI/UPI)"),
    ("NODE", "Connection traversing PCIe as well as the interconnect between PCIe Host Bridges within a NUMA node"),
    ("PHB", "Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)"),
    ("PXB", "Connection traversing multiple PCIe bridges (without traversing the PCIe Host Bridge)"),
    ("PIX", "Connection traversing at most a single PCIe bridge"),
    ("NV#", "Connection traversing a bonded set of # NVLinks"),
)
EMU_LEGEND = ("EMU", "Emulated: two logical devices on one physical GPU (VT_EMULATE_DEVICES); native access")


class TopologyError(ValueError):
    """A topology document that breaks the schema; the message names the field and the problem."""


def link_rank(link: dict) -> tuple:
    """Sort key for link quality (larger is better): NVLink by count, then PCIe by closeness; a pair without
    usable P2P (no access, or a failed functional check) ranks below every P2P-capable one."""
    t = link["type"]
    m = _NV.match(t)
    base = (7, 0) if t == "EMU" else (6, int(m.group(1))) if m else (5 - PCIE_LEVELS.index(t), 0)
    usable = link.get("p2p_access", False) and not str(link.get("p2p_functional", "")).startswith("failed")
    return (1 if usable else 0,) + base


def is_valid_type(t: str) -> bool:
    return t in ("X", "EMU") or t in PCIE_LEVELS or bool(_NV.match(t))


def _require(cond, msg):
    if not cond:
        raise TopologyError(msg)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool))


# Optional fields the renderers read, with the types they must have when present (None is always allowed):
# every value a renderer formats is checked here, so a hostile file fails in validate(), never in a renderer.
_DEVICE_FIELDS = {"uuid": str, "sm_count": int, "memory_bytes": int, "cpu_affinity": str, "numa_node": int,
                  "virtualization_mode": str}
_HOST_FIELDS = {"hostname": str, "cpu_count": int, "numa_nodes": list, "platform": str}
_DRIVER_FIELDS = {"driver_version": str, "cuda_driver_version": str, "cuda_runtime_version": str,
                  "nccl_version": str, "cuda_error": str, "nvml_error": str}
_MATRICES = ("ce_unidir_gbps", "ce_bidir_gbps", "sm_unidir_gbps", "sm_bidir_gbps", "latency_us")
_VECTORS = ("host_to_device_gbps", "device_to_host_gbps", "device_local_gbps")


def _check_fields(obj: dict, fields: dict, where: str):
    for key, kind in fields.items():
        v = obj.get(key)
        ok = v is None or (_is_int(v) if kind is int else isinstance(v, kind))
        _require(ok, f"{where}.{key} must be {'an integer' if kind is int else kind.__name__}, got {v!r:.60}")
        if kind is int and v is not None:
            _require(v >= 0, f"{where}.{key} must not be negative, got {v}")


def _validate_host(host: dict):
    _check_fields(host, _HOST_FIELDS, "host")
    for k, node in enumerate(host.get("numa_nodes") or []):
        _require(isinstance(node, dict) and _is_int(node.get("node")) and isinstance(node.get("cpus"), str),
                 f"host.numa_nodes[{k}] must be an object with an integer 'node' and a string 'cpus'")


def _validate_measurements(m: dict, n: int):
    _require(isinstance(m.get("conventions", ""), str), "measurements.conventions must be a string")
    for key in _VECTORS:
        v = m.get(key)
        _require(isinstance(v, list) and len(v) == n and all(_is_number(x) for x in v),
                 f"measurements.{key} must be a list of {n} numbers")
    for key in _MATRICES:
        mat = m.get(key)
        if mat is None:
            continue
        _require(isinstance(mat, list) and len(mat) == n and all(
            isinstance(row, list) and len(row) == n and all(x is None or _is_number(x) for x in row) for row in mat),
            f"measurements.{key} must be a {n} x {n} matrix of numbers (or null)")


def validate(doc) -> dict:
    _require(isinstance(doc, dict), "topology document must be a JSON object")
    _require(doc.get("schema") == SCHEMA,
             f"unsupported topology schema {doc.get('schema')!r}; this vibetensor reads {SCHEMA!r}")
    for key in ("host", "driver", "devices", "links"):
        _require(key in doc, f"topology document is missing '{key}'")
    for key in ("host", "driver"):
        _require(isinstance(doc[key], dict), f"'{key}' must be an object")
    _validate_host(doc["host"])
    _check_fields(doc["driver"], _DRIVER_FIELDS, "driver")
    _require(doc.get("measurements") is None or isinstance(doc["measurements"], dict),
             "'measurements' must be an object")
    _require(isinstance(doc.get("unsupported", []), list) and all(isinstance(u, str) for u in doc.get("unsupported", [])),
             "'unsupported' must be a list of strings")
    devices = doc["devices"]
    _require(isinstance(devices, list), "'devices' must be a list")
    for i, d in enumerate(devices):
        _require(isinstance(d, dict), f"devices[{i}] must be an object")
        for key in ("index", "name", "pci_bus_id"):
            _require(key in d, f"devices[{i}] is missing '{key}'")
        _require(_is_int(d["index"]) and d["index"] == i,
                 f"devices[{i}] has index {d['index']!r}; indices must be the integers 0..{len(devices) - 1} in order")
        for key in ("name", "pci_bus_id"):
            _require(isinstance(d[key], str), f"devices[{i}].{key} must be a string")
        cc = d.get("compute_capability", [0, 0])
        _require(isinstance(cc, list) and len(cc) == 2 and all(_is_int(c) for c in cc),
                 f"devices[{i}].compute_capability must be [major, minor]")
        _check_fields(d, _DEVICE_FIELDS, f"devices[{i}]")
    n = len(devices)
    _require(isinstance(doc["links"], list), "'links' must be a list")
    seen = set()
    for k, link in enumerate(doc["links"]):
        _require(isinstance(link, dict), f"links[{k}] must be an object")
        for key in ("src", "dst", "type", "nvlinks", "p2p_access", "p2p_atomics", "p2p_functional"):
            _require(key in link, f"links[{k}] is missing '{key}'")
        s, t = link["src"], link["dst"]
        for name, v in (("src", s), ("dst", t)):
            _require(_is_int(v) and 0 <= v < n,
                     f"links[{k}].{name} = {v!r} names a device that does not exist (have {n} devices)")
        _require(s != t, f"links[{k}] links device {s} to itself")
        _require((s, t) not in seen, f"links[{k}] repeats the pair {s} -> {t}")
        seen.add((s, t))
        _require(isinstance(link["type"], str) and is_valid_type(link["type"]) and link["type"] != "X",
                 f"links[{k}].type = {link['type']!r} is not one of NV<n>, PIX, PXB, PHB, NODE, SYS, EMU")
        m = _NV.match(link["type"])
        _require(_is_int(link["nvlinks"]) and link["nvlinks"] == (int(m.group(1)) if m else 0),
                 f"links[{k}] says {link['type']} but nvlinks = {link['nvlinks']!r}")
        for key in ("p2p_access", "p2p_atomics"):
            _require(isinstance(link[key], bool), f"links[{k}].{key} must be true or false, got {link[key]!r}")
        _require(isinstance(link["p2p_functional"], str), f"links[{k}].p2p_functional must be a string")
    # Every ordered pair needs a link: counted, and the missing ones found lazily, so that a document claiming
    # 10,000 devices is refused without building the 10^8 pairs it would need.
    if len(seen) != n * (n - 1):
        missing = itertools.islice(((s, t) for s in range(n) for t in range(n) if s != t and (s, t) not in seen), 5)
        missing = list(missing)
        _require(False, f"links are missing for pairs {missing[:4]}{'...' if len(missing) > 4 else ''}")
    if doc.get("measurements"):
        _validate_measurements(doc["measurements"], n)
    return doc


def load(source) -> dict:
    """Reads and validates a document from a path, a JSON string or an already parsed dict."""
    if isinstance(source, dict):
        return validate(source)
    if isinstance(source, (str, Path)) and not str(source).lstrip().startswith("{"):
        path = Path(source)
        try:
            text = path.read_bytes()  # json.loads detects UTF-8, -16 and -32 from the bytes
        except OSError as e:
            raise TopologyError(f"cannot read topology file {path}: {e.strerror}") from None
    else:
        text = str(source)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TopologyError(f"topology file is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except UnicodeDecodeError as e:
        raise TopologyError(f"topology file is not UTF-8/16/32 text: {e.reason} at byte {e.start}") from None
    except RecursionError:
        raise TopologyError("topology file nests too deeply to be a topology document") from None
    except ValueError as e:  # e.g. an integer of thousands of digits (Python's int_max_str_digits)
        raise TopologyError(f"topology file holds a value that cannot be read: {str(e)[:120]}") from None
    return validate(doc)


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=False)


def link_map(doc: dict) -> dict:
    """{(src, dst): link} for quick lookups."""
    return {(link["src"], link["dst"]): link for link in doc["links"]}
