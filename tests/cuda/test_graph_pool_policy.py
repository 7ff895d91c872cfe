"""Graph-private pools of the caching allocator (Note [Graph-private pool]) over a fake device: runs without a GPU.

Streams are plain integers. `begin_capture(s, pool)` / `end_capture(s)` do what CUDAGraph.capture_begin/_end do,
with the fake device's capture state in place of CUDA's; `replay(pool, s)` is what a graph launch on s tells
the allocator; `release_pool(pool)` is graph reset/destruction. While any capture is underway the fake device
raises on every call CUDA forbids then (event record/query/wait/destroy, cudaFree), so a test that passes shows
the allocator made none.
"""
import itertools
import random

import pytest

from vibetensor._C import cuda as C

MiB = 1 << 20
SHARED = (0, 0)
CAPTURE, OTHER, REPLAY = 7, 8, 0  # the capture's side stream, another stream, the stream graphs replay on


def fresh(capacity=256 * MiB, conf=""):
    return C._FakeAllocator(capacity, conf)


_serials = itertools.count(1)


def new_pool():
    """A pool id of the graph_pool_handle() form (0, n), unique in this test run."""
    return (0, next(_serials))


def pool_of(a, p):
    for seg in a.memory_snapshot():
        if seg["address"] <= p < seg["address"] + seg["total_size"]:
            return seg["segment_pool_id"]
    raise AssertionError(f"{p:#x} is in no segment")


def reserved(a, pool):
    return sum(s["total_size"] for s in a.memory_snapshot() if s["segment_pool_id"] == pool)


def test_capture_allocations_come_from_the_private_pool_only():
    a = fresh()
    warm = a.allocate(1000, CAPTURE)
    a.free(warm)  # a cached shared block on the capture stream: must not serve the capture
    pool = new_pool()
    a.begin_capture(CAPTURE, pool)
    p = a.allocate(1000, CAPTURE)
    q = a.allocate(1000, OTHER)  # not part of the capture: shared pool
    assert p != warm and pool_of(a, p) == pool
    assert pool_of(a, q) == SHARED
    a.join_capture(OTHER + 1, CAPTURE)  # a stream forked into the capture allocates from the pool too
    assert pool_of(a, a.allocate(5 * MiB, OTHER + 1)) == pool
    a.end_capture(CAPTURE)
    assert pool_of(a, a.allocate(1000, CAPTURE)) == SHARED  # eager work after the capture: shared again


def test_blocks_freed_in_a_capture_stay_in_the_pool():
    a = fresh()
    pool = new_pool()
    a.begin_capture(CAPTURE, pool)
    p = a.allocate(4096, CAPTURE)
    a.free(p)
    assert a.allocate(4096, CAPTURE) == p  # reused within the capture (same stream: graph order)
    a.end_capture(CAPTURE)
    assert a.allocate(4096, CAPTURE) != p  # but never by eager work while the graph lives
    a.release_pool(pool)


def test_no_event_or_free_calls_while_a_capture_is_underway():
    a = fresh(capacity=64 * MiB)
    pending = a.allocate(4096, 1)
    a.record_stream(pending, 2)
    a.free(pending)  # an event on stream 2, not yet complete
    assert a.outstanding_events == 1
    idle = a.allocate(30 * MiB, 1)
    a.free(idle)  # a cached, fully free segment the GC ladder would like to release
    pool = new_pool()
    a.begin_capture(CAPTURE, pool)
    x = a.allocate(4096, 1)  # eager allocation on another stream: no polling of the pending event
    y = a.allocate(1 << 16, CAPTURE)
    a.record_stream(y, OTHER)
    a.free(y)  # needs an event on OTHER: deferred, not recorded now
    states = [b["state"] for s in a.memory_snapshot() for b in s["blocks"] if b["address"] == y]
    assert states == ["active_pending_free"]
    before = a.device_bytes
    a.empty_cache()  # releases nothing during a capture
    assert a.device_bytes == before == (2 + 30 + 2) * MiB
    with pytest.raises(MemoryError, match="capture is underway"):
        a.allocate(40 * MiB, CAPTURE)  # the ladder would have to free the idle segment: OOM instead
    assert a.outstanding_events == 1
    assert pool_of(a, y) == pool
    a.end_capture(CAPTURE)  # the deferred event is recorded once no capture is underway
    assert a.outstanding_events == 2
    a.complete(OTHER)
    a.complete(2)
    a.allocate(40 * MiB, 1)  # the ladder runs again after the capture
    a.free(x)


def test_pool_memory_stays_reserved_until_the_last_graph_goes():
    a = fresh()
    pool = new_pool()
    a.begin_capture(CAPTURE, pool)
    tmp = a.allocate(3 * MiB, CAPTURE)
    out = a.allocate(1000, CAPTURE)
    a.free(tmp)
    a.end_capture(CAPTURE)
    a.replay(pool, REPLAY)
    before = a.device_bytes
    assert reserved(a, pool) == 22 * MiB
    a.empty_cache()  # the graph is alive: its pool keeps its memory, even the free block
    assert a.device_bytes == before and reserved(a, pool) == 22 * MiB
    a.free(out)  # a static output dropped while the graph lives: back to the pool, not to the shared cache
    assert reserved(a, pool) == 22 * MiB
    a.release_pool(pool)  # the graph is reset: the segments join the shared cache ...
    assert reserved(a, pool) == 0 and reserved(a, SHARED) == 22 * MiB
    states = {b["state"] for s in a.memory_snapshot() for b in s["blocks"]}
    assert states == {"active_pending_free"}  # ... once the replays on REPLAY are done
    a.empty_cache()
    assert a.device_bytes == before
    a.complete(REPLAY)
    a.empty_cache()
    assert a.device_bytes == 0 and a.outstanding_events == 0
    s = a.memory_stats()
    assert s["reserved_bytes.all.current"] == 0 and s["active_bytes.all.current"] == 0


def test_handover_of_a_live_static_output_waits_for_the_replays():
    a = fresh()
    pool = new_pool()
    a.begin_capture(CAPTURE, pool)
    out = a.allocate(4096, CAPTURE)
    a.end_capture(CAPTURE)
    a.replay(pool, REPLAY)
    a.release_pool(pool)  # the graph goes, the user still holds `out`
    assert pool_of(a, out) == SHARED
    a.free(out)  # its free waits for the replays on REPLAY, like record_stream
    assert a.outstanding_events == 2  # out, and the free rest of its segment
    a.empty_cache()
    assert a.device_bytes == 2 * MiB
    a.complete(REPLAY)
    a.empty_cache()
    assert a.device_bytes == 0


def test_two_graphs_share_one_pool_handle():
    a = fresh()
    pool = new_pool()
    a.begin_capture(CAPTURE, pool)
    p1 = a.allocate(1 << 16, CAPTURE)
    a.free(p1)
    a.end_capture(CAPTURE)
    a.begin_capture(CAPTURE, pool)  # the second graph reuses what the first freed
    p2 = a.allocate(1 << 16, CAPTURE)
    a.end_capture(CAPTURE)
    assert p2 == p1
    a.release_pool(pool)  # first graph reset: the second still holds the pool
    assert pool_of(a, p2) == pool
    a.free(p2)
    assert reserved(a, pool) == 2 * MiB
    a.release_pool(pool)
    assert reserved(a, pool) == 0
    with pytest.raises(RuntimeError, match="no private memory pool"):
        a.release_pool(pool)


def test_handover_waits_for_captures_underway():
    a = fresh()
    p_old, p_new = new_pool(), new_pool()
    a.begin_capture(CAPTURE, p_old)
    x = a.allocate(4096, CAPTURE)
    a.end_capture(CAPTURE)
    a.replay(p_old, REPLAY)
    a.begin_capture(OTHER, p_new)
    a.release_pool(p_old)  # hand-over records events: it waits for the capture on OTHER to end
    assert pool_of(a, x) == p_old
    a.end_capture(OTHER)
    assert pool_of(a, x) == SHARED
    a.release_pool(p_new)


def test_pool_taken_up_again_before_its_handover_stays_private():
    a = fresh()
    p_old, p_new = new_pool(), new_pool()
    a.begin_capture(CAPTURE, p_old)
    x = a.allocate(4096, CAPTURE)
    a.end_capture(CAPTURE)
    a.begin_capture(OTHER, p_new)
    a.release_pool(p_old)  # freeable, but the hand-over waits for the capture on OTHER
    a.begin_capture(CAPTURE, p_old)  # a new graph shares p_old: it must not be handed over after all
    a.end_capture(OTHER)
    a.end_capture(CAPTURE)
    assert pool_of(a, x) == p_old
    a.release_pool(p_old)
    a.release_pool(p_new)
    assert pool_of(a, x) == SHARED


def test_illegal_pool_use_is_reported():
    a = fresh()
    pool = new_pool()
    a.begin_capture(CAPTURE, pool)
    with pytest.raises(RuntimeError, match="already allocating from memory pool"):
        a.begin_capture(OTHER, pool)  # two concurrent captures into one pool
    a.end_capture(CAPTURE)
    with pytest.raises(ValueError, match="shared pools"):
        a.begin_capture(OTHER, SHARED)
    with pytest.raises(RuntimeError, match="no private memory pool"):
        a.replay(new_pool(), REPLAY)
    a.release_pool(pool)
    with pytest.raises(RuntimeError, match="passthrough"):
        fresh(conf="backend:passthrough").begin_capture(CAPTURE, new_pool())
    assert not a.capture_underway


def test_seeded_fuzz_with_captures(seed):
    """Random allocations, frees, record_stream, captures, replays and releases. Every block is filled with its
    id and checked at free, so a block handed out twice (or a private block given to eager work) is caught; the
    fake device raises on any illegal call during a capture; stats and snapshot agree; nothing leaks."""
    rng = random.Random(seed)
    a = fresh(capacity=512 * MiB)
    live = {}  # ptr -> (size, tag)
    graphs = {}  # pool -> number of captured graphs still holding it
    capture = None  # the pool the capture on CAPTURE allocates from, while one is underway
    retired = set()  # pools whose last graph went during that capture: handed over when it ends
    tag = 0
    for _ in range(2500):
        op = rng.random()
        if op < 0.45 or not live:
            stream = rng.choice([1, 2, CAPTURE])
            size = rng.choice([rng.randint(1, 4096), rng.randint(1, 2 * MiB), rng.randint(1, 12 * MiB)])
            try:
                p = a.allocate(size, stream)
            except MemoryError:
                continue
            assert p not in live
            assert pool_of(a, p) == (capture if capture and stream == CAPTURE else SHARED)
            tag = tag % 250 + 1
            a.write(p, size, tag)
            live[p] = (size, tag)
        elif op < 0.55:
            a.record_stream(rng.choice(list(live)), rng.choice([1, 2, REPLAY]))
        elif op < 0.85:
            p = rng.choice(list(live))
            size, t = live.pop(p)
            assert a.check(p, size, t), "block contents changed while it was live"
            a.free(p)
        elif op < 0.9:
            if capture is None:  # a new pool, or one shared with earlier graphs
                capture = rng.choice(list(graphs)) if graphs and rng.random() < 0.3 else new_pool()
                a.begin_capture(CAPTURE, capture)
            else:
                a.end_capture(CAPTURE)
                graphs[capture] = graphs.get(capture, 0) + 1
                capture = None
                retired.clear()
        elif op < 0.95:
            if graphs:
                a.replay(rng.choice(list(graphs)), rng.choice([REPLAY, 1]))
        elif op < 0.97:
            if graphs:  # a graph is reset
                pool = rng.choice(list(graphs))
                a.release_pool(pool)
                graphs[pool] -= 1
                if graphs[pool] == 0:
                    del graphs[pool]
                    if capture:
                        retired.add(pool)
        else:
            a.complete(rng.choice([1, 2, REPLAY]))
        s = a.memory_stats()
        for key in ("allocated_bytes", "reserved_bytes", "active_bytes", "allocation", "segment"):
            assert s[f"{key}.all.current"] >= 0
            assert s[f"{key}.all.current"] == s[f"{key}.small_pool.current"] + s[f"{key}.large_pool.current"]
        assert s["allocated_bytes.all.current"] <= s["active_bytes.all.current"] <= s["reserved_bytes.all.current"]
        segs = a.memory_snapshot()
        assert sum(x["total_size"] for x in segs) == s["reserved_bytes.all.current"]
        assert sum(x["active_size"] for x in segs) == s["active_bytes.all.current"]
        assert {x["segment_pool_id"] for x in segs} <= set(graphs) | retired | {SHARED, capture}
    if capture:
        a.end_capture(CAPTURE)
        graphs[capture] = graphs.get(capture, 0) + 1
    for p, (size, t) in live.items():
        assert a.check(p, size, t)
        a.free(p)
    for pool, n in graphs.items():
        for _ in range(n):
            a.release_pool(pool)
    for st in (1, 2, REPLAY, CAPTURE):
        a.complete(st)
    a.empty_cache()
    s = a.memory_stats()
    assert s["allocated_bytes.all.current"] == 0 and s["reserved_bytes.all.current"] == 0
    assert a.device_bytes == 0 and a.outstanding_events == 0


def test_python_surface_without_a_capture():
    """What works (and how it fails) without a GPU: graphs are constructible, misuse names the fix."""
    import vibetensor.torch as vt

    handles = {vt.cuda.graph_pool_handle() for _ in range(100)}
    assert len(handles) == 100 and SHARED not in handles and all(h[0] == 0 for h in handles)
    g = vt.cuda.CUDAGraph()
    assert g.pool() == SHARED and g.num_nodes == 0 and "empty" in repr(g)
    with pytest.raises(RuntimeError, match="replay\\(\\) before capture"):
        g.replay()
    with pytest.raises(RuntimeError, match="without capture_begin"):
        g.capture_end()
    with pytest.raises(ValueError, match="capture_error_mode"):
        g.capture_begin(capture_error_mode="sometimes")
    with pytest.raises(TypeError, match="pool handle"):
        g.capture_begin(pool=5)
    with pytest.raises(RuntimeError, match="no captured graph"):
        g.debug_dump("/nonexistent/graph.dot")
    g.reset()  # resetting an empty graph is fine
    if not vt.cuda.is_available():
        assert vt.cuda.is_current_stream_capturing() is False
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            g.capture_begin()
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            vt.cuda.graph(g)
