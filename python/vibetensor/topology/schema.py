"""The topology document: what the probe writes and every algorithm, the renderer and the CLI read.

A versioned JSON object (`schema: "vibetensor.topology/1"`) with `host`, `driver`, `devices[]`, `links[]`
(one per ordered pair of distinct devices), `unsupported[]` (platform queries that answered "not supported")
and optional `measurements`. `load()` validates every rule below and raises TopologyError naming the first
violation, so algorithms can trust what they get.
"""
from __future__ import annotations

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


def validate(doc) -> dict:
    _require(isinstance(doc, dict), "topology document must be a JSON object")
    _require(doc.get("schema") == SCHEMA,
             f"unsupported topology schema {doc.get('schema')!r}; this vibetensor reads {SCHEMA!r}")
    for key in ("host", "driver", "devices", "links"):
        _require(key in doc, f"topology document is missing '{key}'")
    for key in ("host", "driver"):
        _require(isinstance(doc[key], dict), f"'{key}' must be an object")
    _require(isinstance(doc.get("measurements", {}), dict), "'measurements' must be an object")
    _require(isinstance(doc.get("unsupported", []), list), "'unsupported' must be a list")
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
    n = len(devices)
    seen = set()
    _require(isinstance(doc["links"], list), "'links' must be a list")
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
        _require(is_valid_type(link["type"]) and link["type"] != "X",
                 f"links[{k}].type = {link['type']!r} is not one of NV<n>, PIX, PXB, PHB, NODE, SYS, EMU")
        m = _NV.match(link["type"])
        _require(_is_int(link["nvlinks"]) and link["nvlinks"] == (int(m.group(1)) if m else 0),
                 f"links[{k}] says {link['type']} but nvlinks = {link['nvlinks']!r}")
        for key in ("p2p_access", "p2p_atomics"):
            _require(isinstance(link[key], bool), f"links[{k}].{key} must be true or false, got {link[key]!r}")
        _require(isinstance(link["p2p_functional"], str), f"links[{k}].p2p_functional must be a string")
    missing = [(s, t) for s in range(n) for t in range(n) if s != t and (s, t) not in seen]
    _require(not missing, f"links are missing for pairs {missing[:4]}{'...' if len(missing) > 4 else ''}")
    return doc


def load(source) -> dict:
    """Reads and validates a document from a path, a JSON string or an already parsed dict."""
    if isinstance(source, dict):
        return validate(source)
    if isinstance(source, (str, Path)) and not str(source).lstrip().startswith("{"):
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as e:
            raise TopologyError(f"cannot read topology file {path}: {e.strerror}") from None
    else:
        text = str(source)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TopologyError(f"topology file is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return validate(doc)


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=False)


def link_map(doc: dict) -> dict:
    """{(src, dst): link} for quick lookups."""
    return {(link["src"], link["dst"]): link for link in doc["links"]}
