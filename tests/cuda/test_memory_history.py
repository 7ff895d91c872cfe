"""Allocation history (Note [Allocation history]): block stacks and the trace ring, over the fake device (CPU) and
on a real GPU (marker cuda). The snapshot format is torch's; where torch is installed its memory_viz reads it."""
import pickle
import sys
import threading

import pytest
import vibetensor.torch as vt
from vibetensor._C import cuda as C

MiB = 1 << 20


def fresh(capacity=64 * MiB, conf=""):
    return C._FakeAllocator(capacity, conf)


def blocks(snapshot_segments):
    return [b for seg in snapshot_segments for b in seg["blocks"]]


def block_at(a, p):
    return next(b for b in blocks(a.memory_snapshot()) if b["address"] == p)


def trace(a):
    return a.snapshot()["device_traces"][0]


def allocate_here(a, n, stream=0):  # a named frame for the stacks to point at
    return a.allocate(n, stream)


def test_off_by_default_and_free_of_cost():
    a = fresh()
    p = allocate_here(a, 1000)
    a.free(p)
    q = a.allocate(1000)
    assert block_at(a, q)["frames"] == [] and trace(a) == []
    assert a.context_calls == 0  # no stack was ever asked for
    assert a.snapshot()["segments"][0]["frames"] == []


def test_frames_point_at_the_allocating_python_code():
    a = fresh()
    a.record_memory_history()
    line = sys._getframe().f_lineno + 1
    p = allocate_here(a, 1000)
    frames = block_at(a, p)["frames"]
    assert frames[0]["name"] == "allocate_here" and frames[0]["filename"] == __file__
    assert frames[1] == {"filename": __file__, "line": line, "name": "test_frames_point_at_the_allocating_python_code"}
    seg = a.memory_snapshot()[0]
    assert seg["frames"] == frames and seg["requested_size"] == 1000  # the allocation that made the segment
    a.free(p)
    assert block_at(a, p)["frames"] == []  # inactive blocks carry no stack


def test_trace_records_alloc_free_and_segments():
    a = fresh()
    a.record_memory_history()
    p = allocate_here(a, 5000)
    a.free(p)
    a.empty_cache()
    t = trace(a)
    assert [e["action"] for e in t] == ["segment_alloc", "alloc", "free_requested", "free_completed", "segment_free"]
    assert t[1]["addr"] == p and t[1]["size"] == 5120 and t[1]["stream"] == 0 and t[1]["pool_id"] == (0, 0)
    assert t[0]["size"] == 2 * MiB and t[4]["addr"] == t[0]["addr"]
    assert t[2]["frames"][0]["name"] == "test_trace_records_alloc_free_and_segments"  # the stack of the free
    assert t[3]["frames"][0]["name"] == "allocate_here"  # free_completed repeats the allocation's stack
    assert all(t[i]["time_us"] <= t[i + 1]["time_us"] for i in range(4))


def test_free_completes_only_after_the_other_stream_passes():
    a = fresh()
    a.record_memory_history()
    p = a.allocate(4096, 1)
    a.record_stream(p, 2)
    a.free(p)
    assert [e["action"] for e in trace(a)][-1] == "free_requested"
    assert block_at(a, p)["state"] == "active_pending_free" and block_at(a, p)["frames"]
    a.complete(2)
    a.allocate(100, 3)  # the allocator polls its events on allocation
    actions = [e["action"] for e in trace(a)]
    assert actions.count("free_completed") == 1 and actions.index("free_completed") > actions.index("free_requested")


def test_ring_buffer_keeps_the_newest_entries():
    a = fresh()
    a.record_memory_history(max_entries=5)
    ps = [a.allocate(1000) for _ in range(20)]
    t = trace(a)
    assert len(t) == 5 and [e["addr"] for e in t] == ps[-5:]
    a.record_memory_history(max_entries=2)  # shrinking keeps the newest
    assert [e["addr"] for e in trace(a)] == ps[-2:]
    a.record_memory_history(max_entries=100, clear_history=True)
    assert trace(a) == []


@pytest.mark.parametrize("context, alloc_frames, free_frames, block_frames", [
    (None, False, False, False), ("state", False, False, True), ("alloc", True, False, True),
    ("all", True, True, True),
])
def test_context_levels(context, alloc_frames, free_frames, block_frames):
    a = fresh()
    a.record_memory_history(enabled="all", context=context)
    p = allocate_here(a, 1000)
    assert bool(block_at(a, p)["frames"]) == block_frames
    a.free(p)
    by_action = {e["action"]: e for e in trace(a)}
    assert bool(by_action["alloc"]["frames"]) == alloc_frames
    assert bool(by_action["free_requested"]["frames"]) == free_frames
    if context is None:
        assert a.context_calls == 0


def test_state_mode_keeps_stacks_but_no_trace():
    a = fresh()
    a.record_memory_history(enabled="state")
    p = allocate_here(a, 1000)
    assert block_at(a, p)["frames"] and trace(a) == []


def test_turning_history_off_drops_the_trace_and_stops_collecting():
    a = fresh()
    a.record_memory_history()
    a.free(a.allocate(1000))
    calls = a.context_calls
    assert calls == 2 and trace(a)
    a.record_memory_history(enabled=None)
    assert trace(a) == []
    p = a.allocate(1000)
    a.free(p)
    assert a.context_calls == calls and trace(a) == []


def test_oom_entry_names_the_request_and_free_memory():
    a = fresh(capacity=8 * MiB)
    a.record_memory_history()
    with pytest.raises(MemoryError):
        allocate_here(a, 7 * MiB)  # fits the device, not its 20 MiB segment
    e = trace(a)[-1]
    assert e["action"] == "oom" and e["size"] == 7 * MiB and e["device_free"] == 8 * MiB
    assert e["frames"][0]["name"] == "allocate_here"


def test_passthrough_and_graph_pools_are_traced():
    a = fresh(conf="backend:passthrough")
    a.record_memory_history()
    a.free(a.allocate(1000))
    assert [e["action"] for e in trace(a)] == ["segment_alloc", "alloc", "free_requested", "free_completed",
                                               "segment_free"]
    b = fresh()
    b.record_memory_history()
    b.begin_capture(7, (0, 99))
    p = b.allocate(1000, 7)
    b.end_capture(7)
    assert trace(b)[-1]["pool_id"] == (0, 99) and trace(b)[-1]["addr"] == p


def test_frames_come_from_the_allocating_thread():
    a = fresh()
    a.record_memory_history()
    out = {}

    def worker():
        out["p"] = allocate_here(a, 1000)

    th = threading.Thread(target=worker)
    th.start()
    th.join()
    names = [f["name"] for f in block_at(a, out["p"])["frames"]]
    assert names[:2] == ["allocate_here", "worker"] and "test_frames_come_from_the_allocating_thread" not in names


def test_bad_arguments_name_the_parameter():
    a = fresh()
    with pytest.raises(ValueError, match="enabled"):
        a.record_memory_history(enabled="yes")
    with pytest.raises(ValueError, match="context"):
        a.record_memory_history(context="some")
    with pytest.raises(ValueError, match="stacks"):
        a.record_memory_history(stacks="cpp")
    with pytest.raises(ValueError, match="stacks"):
        vt.cuda.memory._record_memory_history(stacks="cpp")
    with pytest.raises(ValueError, match="max_entries"):
        vt.cuda.memory._record_memory_history(max_entries=0)


def test_snapshot_pickles_and_torch_memory_viz_reads_it(tmp_path):
    a = fresh()
    a.record_memory_history()
    keep = [allocate_here(a, n) for n in (1000, 3 * MiB, 100)]
    a.free(keep.pop(1))
    snap = pickle.loads(pickle.dumps(a.snapshot()))
    assert {"segments", "device_traces"} <= set(snap)
    seg = snap["segments"][0]
    assert {"device", "address", "total_size", "allocated_size", "active_size", "requested_size", "stream",
            "segment_type", "segment_pool_id", "is_expandable", "frames", "blocks"} <= set(seg)
    assert {"address", "size", "requested_size", "state", "frames"} <= set(seg["blocks"][0])
    viz = pytest.importorskip("torch.cuda._memory_viz")
    assert "segments: 2" in viz.segsum(snap)
    assert "allocate_here" in viz.memory(snap, format_flamegraph=lambda text: text)
    assert "cudaMalloc" in viz.trace(snap) and "del" in viz.trace(snap)


def test_module_level_api_without_touching_a_device(tmp_path):
    vt.cuda.memory._record_memory_history(max_entries=10)
    try:
        path = tmp_path / "snap.pickle"
        vt.cuda.memory._dump_snapshot(str(path))
        snap = pickle.loads(path.read_bytes())
        assert set(snap) == {"segments", "device_traces"}
        if not vt.cuda.is_available():
            assert snap == {"segments": [], "device_traces": []}
    finally:
        vt.cuda.memory._record_memory_history(enabled=None)
    assert vt.cuda.memory.record_memory_history is vt.cuda.memory._record_memory_history


def _make_tensor(n):
    return vt.empty(n, device="cuda")


@pytest.mark.cuda
def test_real_allocator_records_python_stacks(tmp_path):
    vt.cuda.memory._record_memory_history(max_entries=1000)
    try:
        x = _make_tensor(1 << 20)
        ptr = x.data_ptr()
        snap = vt.cuda.memory._snapshot()
        mine = [b for b in blocks(snap["segments"]) if b["address"] == ptr]
        assert mine and mine[0]["frames"][0]["name"] == "_make_tensor"
        assert mine[0]["frames"][0]["filename"] == __file__
        assert [b["frames"] for b in blocks(vt.cuda.memory_snapshot()) if b["address"] == ptr] == [mine[0]["frames"]]
        del x
        entries = snap["device_traces"][vt.cuda.current_device()]
        assert any(e["action"] == "alloc" and e["addr"] == ptr for e in entries)
        entries = vt.cuda.memory._snapshot()["device_traces"][vt.cuda.current_device()]
        assert any(e["action"] == "free_completed" and e["addr"] == ptr for e in entries)
        path = tmp_path / "snap.pickle"
        vt.cuda.memory._dump_snapshot(str(path))
        viz = pytest.importorskip("torch.cuda._memory_viz")
        assert "segments:" in viz.segsum(pickle.loads(path.read_bytes()))
    finally:
        vt.cuda.memory._record_memory_history(enabled=None)
    y = _make_tensor(1 << 10)
    assert [b["frames"] for b in blocks(vt.cuda.memory_snapshot()) if b["address"] == y.data_ptr()] == [[]]
