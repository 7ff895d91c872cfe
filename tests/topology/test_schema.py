"""The topology document: fixtures load, and every schema rule rejects what it should with a clear message."""
import copy
import json

import pytest
from conftest import FIXTURES

from vibetensor.topology import SCHEMA, TopologyError, dumps, link_rank, load


def test_fixtures_load(fixture_doc):
    doc = load(fixture_doc)
    n = len(doc["devices"])
    assert len(doc["links"]) == n * (n - 1)
    assert load(dumps(doc)) == doc  # round trip through JSON text


def test_load_from_path(tmp_path, fixture_doc):
    p = tmp_path / "t.json"
    p.write_text(json.dumps(fixture_doc))
    assert load(p) == fixture_doc
    assert load(str(p)) == fixture_doc


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(schema="vibetensor.topology/99"), "unsupported topology schema"),
    (lambda d: d.pop("links"), "missing 'links'"),
    (lambda d: d["links"][0].update(dst=17), "names a device that does not exist"),
    (lambda d: d["links"][0].update(type="NVX"), "is not one of"),
    (lambda d: d["links"][0].update(type="NV3", nvlinks=4), "says NV3 but nvlinks = 4"),
    (lambda d: d["links"].pop(), "links are missing for pairs"),
    (lambda d: d["links"].append(copy.deepcopy(d["links"][0])), "repeats the pair"),
    (lambda d: d["links"][0].update(dst=d["links"][0]["src"]), "to itself"),
    (lambda d: d["devices"][1].update(index=5), "indices must be"),
    (lambda d: d["devices"][0].pop("pci_bus_id"), "missing 'pci_bus_id'"),
    (lambda d: d["devices"][1].update(index=True), "indices must be"),
    (lambda d: d["links"][0].update(nvlinks=7), "says PIX but nvlinks = 7"),
    (lambda d: d["links"][0].update(p2p_access="no"), "must be true or false"),
    (lambda d: d.update(driver=[]), "'driver' must be an object"),
    (lambda d: d["devices"][0].update(compute_capability="9.0"), r"compute_capability must be \[major, minor\]"),
])
def test_invalid_documents_are_rejected(mutate, message):
    doc = json.loads((FIXTURES / "pcie_4gpu_two_switches.json").read_text())
    mutate(doc)
    with pytest.raises(TopologyError, match=message):
        load(doc)


def test_malformed_json_names_the_position(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"schema": "vibetensor.topology/1",\n "devices": [}')
    with pytest.raises(TopologyError, match="not valid JSON.*line 2"):
        load(p)


def test_missing_file(tmp_path):
    with pytest.raises(TopologyError, match="cannot read topology file"):
        load(tmp_path / "nope.json")


def test_link_rank_total_order():
    def lk(t, access=True, functional="ok"):
        return {"type": t, "p2p_access": access, "p2p_functional": functional}

    order = [lk("NV18"), lk("NV4"), lk("PIX"), lk("PXB"), lk("PHB"), lk("NODE"), lk("SYS"),
             lk("PIX", functional="failed: bad"), lk("SYS", access=False)]
    ranks = [link_rank(x) for x in order]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == len(ranks)
    assert SCHEMA == "vibetensor.topology/1"
