"""Fabric parts that need no GPU: the route table's refcounts and agreement rule, counters and their
invariants, the bounded event ring and its drop count, the trace export, fault parsing, and the errors a
machine without CUDA devices gives."""
import json

import pytest

import vibetensor.torch as vt
from vibetensor import _C, fabric
from vibetensor.fabric import faults

F = _C.fabric


def test_reasons_are_a_fixed_set():
    assert fabric.reason_names() == ["no_p2p", "p2p_broken", "disabled_by_user", "capture_active", "peer_limit"]


def test_route_table_refcounts_and_agreement():
    a, b = 40, 41  # pairs no test opens a Fabric over
    assert F.route(a, b) == ("uncovered", "")
    F.hold_route(a, b, "staged", "no_p2p")
    F.hold_route(a, b, "staged", "no_p2p")
    assert F.route(a, b) == ("staged", "no_p2p") and F.route_holders(a, b) == 2
    with pytest.raises(RuntimeError, match="already held.*staged \\(no_p2p\\)"):
        F.hold_route(a, b, "p2p", "")
    F.release_route(a, b)
    assert F.route(a, b) == ("staged", "no_p2p")
    F.release_route(a, b)
    assert F.route(a, b) == ("uncovered", "")
    with pytest.raises(RuntimeError, match="no Fabric holds"):
        F.release_route(a, b)


@pytest.mark.parametrize("route,reason,msg", [("p2p", "no_p2p", "only a staged route"),
                                              ("staged", "", "needs a reason"),
                                              ("fast", "", "unknown route"),
                                              ("staged", "bogus", "unknown fallback reason")])
def test_route_table_rejects_bad_routes(route, reason, msg):
    with pytest.raises(ValueError, match=msg):
        F.hold_route(42, 43, route, reason)
    with pytest.raises(ValueError, match="outside"):
        F.hold_route(0, 64, "p2p", "")


def test_counter_invariants_pairs_sum_to_total():
    F.reset_counters()
    plan = [(50, 51, 100, "p2p", ""), (51, 50, 7, "native", ""), (50, 52, 64, "staged", "no_p2p"),
            (50, 51, 1, "p2p", ""), (52, 53, 9, "staged", "p2p_broken")]
    for c, r, nbytes, route, why in plan:
        F.count(c, r, nbytes, route, why)
    pairs = {(c, r): F.pair_counters(c, r) for c, r, *_ in plan}
    total = F.total_counters()
    for key in ("ops", "bytes", "hits"):
        assert sum(p[key] for p in pairs.values()) == total[key]
    for why in fabric.reason_names():
        assert sum(p["fallbacks"][why] for p in pairs.values()) == total["fallbacks"][why]
    assert pairs[(50, 51)] == {"ops": 2, "bytes": 101, "hits": 2, "fallbacks": {w: 0 for w in fabric.reason_names()}}
    assert total["fallbacks"]["no_p2p"] == 1 and total["fallbacks"]["p2p_broken"] == 1
    assert total["ops"] == total["hits"] + sum(total["fallbacks"].values())
    F.reset_counters()
    assert F.total_counters()["ops"] == 0


def test_event_ring_is_bounded_and_counts_drops():
    F.set_ring_capacity(8)
    try:
        for i in range(20):
            F.record_event("enqueue", f"op{i}", 0, 1, i)
        ring = F.read_ring()
        assert [e["name"] for e in ring] == [f"op{i}" for i in range(12, 20)]  # the newest 8, oldest first
        assert F.ring_dropped() == 12
        with pytest.raises(ValueError, match="unknown fabric event kind"):
            F.record_event("nonsense", "x")
        F.set_ring_capacity(0)
        F.record_event("enqueue", "ignored")
        assert F.read_ring() == []
    finally:
        F.set_ring_capacity(4096)


def test_trace_export_is_valid_trace_event_json(tmp_path):
    F.set_ring_capacity(4096)
    F.record_event("fallback", "vt::add", 0, 1, 4096, 0, "no_p2p", "")
    F.record_event("collective", "all_reduce/p2p", 0, -1, 1 << 20, 0, "", "devices=[0, 1]")
    doc = fabric.trace.export(str(tmp_path / "t.json"))
    loaded = json.loads((tmp_path / "t.json").read_text())
    assert loaded == json.loads(json.dumps(doc))
    names = [e["name"] for e in loaded["traceEvents"] if e["ph"] == "i"]
    assert "fallback: vt::add" in names and "collective: all_reduce/p2p" in names
    for e in loaded["traceEvents"]:
        assert e["ph"] in ("X", "i", "M") and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float))
    assert loaded["otherData"]["dropped"] == 0
    F.clear_ring()


def test_fault_parsing():
    f = faults.parse("p2p_broken:0-1, hang:2,p2p_broken:3-2")
    assert f.pair_broken(1, 0) and f.pair_broken(2, 3) and not f.pair_broken(0, 2)
    assert f.hung_devices == {2}
    assert not faults.parse("")
    for bad in ("p2p_broken:1-1", "hang:x", "explode:3", "p2p_broken:1"):
        with pytest.raises(ValueError, match="VT_FABRIC_FAULTS entry"):
            faults.parse(bad)


@pytest.mark.skipif(vt.cuda.is_available(), reason="checks the no-GPU errors")
def test_no_gpu_errors_are_plain():
    with pytest.raises(fabric.FabricError, match="a Fabric needs CUDA devices"):
        fabric.Fabric()
    with pytest.raises(fabric.FabricError, match="collectives take CUDA tensors"):
        fabric.all_reduce([vt.ones(2), vt.ones(2)])


def test_collective_argument_errors_before_any_device_work():
    with pytest.raises(TypeError, match="non-empty list"):
        fabric.all_reduce([])
    with pytest.raises(TypeError, match="tensors\\[0\\] is NoneType"):
        fabric.all_reduce([None, vt.ones(2)])
    with pytest.raises(ValueError, match="unknown collectives backend"):
        fabric.collectives._pick_backend("mpi", "all_reduce", [0, 1], "float32", "sum", None)
    with pytest.raises(ValueError, match="Fabric mode"):
        fabric.Fabric(mode="fast")


def test_nccl_reads_vibetensor_and_torch_dtype_names():
    """vibetensor's dtypes print as "vt.float32": the NCCL backend once looked that up whole and refused float32."""
    import torch

    from vibetensor.fabric import nccl

    for name, code in (("float32", 7), ("bfloat16", 9), ("int64", 4)):
        assert nccl._DTYPES[nccl._dtype_name(getattr(vt, name))] == code
        assert nccl._DTYPES[nccl._dtype_name(getattr(torch, name))] == code
