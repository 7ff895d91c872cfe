"""`vt-fabric topo --from` on hostile files (issue 12, item 14): every malformed document ends in the one-line
error and a non-zero exit, never a traceback; documents that are huge but well formed are handled in bounded
time and memory; a failing --plot says so and leaves no file behind.

The wrong-type cases are generated: every field the renderer reads, in each part of a document (host, driver,
a device, a link, measurements), is replaced by each value of a set of wrong types."""
from __future__ import annotations

import copy
import json
import os
import time

import pytest
from click.testing import CliRunner
from conftest import FIXTURES

from vibetensor.cli.fabric import main
from vibetensor.topology import plan_rings, validate

BASE = json.loads((FIXTURES / "pcie_4gpu_two_switches.json").read_text())
WRONG = [None, "x", 1.5, -1, [], {}, True, 10**30, [1, "a"], {"node": "a"}]


def measured(doc):
    n = len(doc["devices"])
    doc = copy.deepcopy(doc)
    doc["measurements"] = {"conventions": "test", "size_bytes": 1, "iters": 1,
                           "host_to_device_gbps": [1.0] * n, "device_to_host_gbps": [1.0] * n,
                           "device_local_gbps": [1.0] * n,
                           "ce_unidir_gbps": [[None if i == j else 2.0 for j in range(n)] for i in range(n)]}
    return doc


def run_file(tmp_path, content: bytes, *args):
    path = tmp_path / "hostile.json"
    path.write_bytes(content)
    return CliRunner().invoke(main, ["topo", "--from", str(path), *args])


def assert_clean(r):
    """Exit 0, or the one-line error with a non-zero exit; never a traceback."""
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    if r.exit_code != 0:
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), r.output


def mutations():
    doc = measured(BASE)
    places = [("host", k) for k in doc["host"]] + [("driver", k) for k in doc["driver"]]
    places += [("devices", 0, k) for k in doc["devices"][0]] + [("links", 0, k) for k in doc["links"][0]]
    places += [("measurements", k) for k in doc["measurements"]]
    places += [(k,) for k in doc]
    for place in places:
        for value in WRONG:
            yield place, value


@pytest.mark.parametrize("place, value", list(mutations()), ids=lambda x: repr(x)[:30])
def test_wrong_types_anywhere_give_one_line_errors(tmp_path, place, value):
    doc = measured(BASE)
    obj = doc
    for key in place[:-1]:
        obj = obj[key]
    obj[place[-1]] = value
    r = run_file(tmp_path, json.dumps(doc).encode(), "--rings")
    assert_clean(r)


@pytest.mark.parametrize("name, content", [
    ("deep nesting", b"[" * 100000 + b"]" * 100000),
    ("deep object nesting", b'{"a":' * 50000 + b"1" + b"}" * 50000),
    ("5000-digit integer", b'{"schema": ' + b"9" * 5000 + b"}"),
    ("not UTF-8", b'{"schema": "\xff\xfe\xfa"}'),
    ("latin-1 name", json.dumps(BASE).replace("NVIDIA", "NV\u00cfDIA").encode("latin-1")),
    ("UTF-16", json.dumps(BASE).encode("utf-16")),
    ("NaN", json.dumps(measured(BASE)).replace("1.0", "NaN").encode()),
    ("empty", b""),
    ("null", b"null"),
    ("a list", b"[]"),
])
def test_unreadable_or_odd_text(tmp_path, name, content):
    assert_clean(run_file(tmp_path, content))


def complete_doc(n):
    doc = copy.deepcopy(BASE)
    dev = doc["devices"][0]
    doc["devices"] = [dict(dev, index=i, pci_bus_id=f"0000:{i:04x}:00.0") for i in range(n)]
    link = doc["links"][0]
    doc["links"] = [dict(link, src=s, dst=t, type="NV4", nvlinks=4) for s in range(n) for t in range(n) if s != t]
    return doc


def test_ten_thousand_devices_without_links_are_refused_quickly(tmp_path):
    doc = copy.deepcopy(BASE)
    doc["devices"] = [dict(doc["devices"][0], index=i) for i in range(10000)]
    doc["links"] = doc["links"][:3]
    start = time.perf_counter()
    r = run_file(tmp_path, json.dumps(doc).encode())
    assert time.perf_counter() - start < 10
    assert_clean(r)
    assert r.exit_code != 0 and "missing" in r.output


def test_rings_over_300_fully_linked_devices_are_fast():
    doc = validate(complete_doc(300))
    start = time.perf_counter()
    rings = plan_rings(doc)
    assert time.perf_counter() - start < 15
    assert rings and all(sorted(r) == list(range(300)) for r in rings)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_plot_to_a_full_device_fails():
    pytest.importorskip("matplotlib")
    r = CliRunner().invoke(main, ["topo", "--from", str(FIXTURES / "nvlink_pair_2gpu.json"), "--plot", "/dev/full"])
    assert r.exit_code != 0 and "cannot write plot" in r.output, r.output
    assert "wrote" not in r.output


def test_a_failed_plot_leaves_no_file(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import vibetensor.topology.plot as plot_mod

    def broken(doc, path):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(plot_mod, "plot", broken)
    out = tmp_path / "never.png"
    r = CliRunner().invoke(main, ["topo", "--from", str(FIXTURES / "nvlink_pair_2gpu.json"), "--plot", str(out)])
    assert r.exit_code != 0 and "renderer failed" in r.output
    assert not out.exists()
