"""CUDA graphs on a real GPU: capture a sequence of ops, replay it with new values written into the static
inputs, and check the outputs against NumPy; the private pool's lifetime (reserved while a graph lives, handed
back after reset/del, shared through a pool handle); allocations during capture served from the pool (as the
snapshot shows); illegal calls during capture raise a clear RuntimeError and leave the process usable.
The allocator policy behind this is also tested without a GPU in test_graph_pool_policy.py."""
import gc

import numpy as np
import pytest

import vibetensor.torch as vt

pytestmark = pytest.mark.cuda

N = 1 << 16


def cuda_from(arr):
    return vt.from_numpy(np.ascontiguousarray(arr)).to("cuda")


def warm_up(fn):
    """Runs fn eagerly on a side stream first, as torch recommends: lazy module loading and other one-time
    setup then happen outside the capture."""
    side = vt.cuda.Stream()
    side.wait_stream(vt.cuda.current_stream())
    with vt.cuda.stream(side):
        fn()
    vt.cuda.current_stream().wait_stream(side)
    vt.cuda.synchronize()


def pool_segments(pool):
    return [s for s in vt.cuda.memory_snapshot() if s["segment_pool_id"] == pool]


def pool_of(ptr):
    for s in vt.cuda.memory_snapshot():
        if s["address"] <= ptr < s["address"] + s["total_size"]:
            return s["segment_pool_id"]
    raise AssertionError(f"{ptr:#x} is in no segment")


def check_stats():
    s = vt.cuda.memory_stats()
    for key in ("allocated_bytes", "reserved_bytes", "active_bytes", "allocation", "segment"):
        assert s[f"{key}.all.current"] >= 0
        assert s[f"{key}.all.current"] == s[f"{key}.small_pool.current"] + s[f"{key}.large_pool.current"]
        assert s[f"{key}.all.peak"] >= s[f"{key}.all.current"]
    assert s["allocated_bytes.all.current"] <= s["active_bytes.all.current"] <= s["reserved_bytes.all.current"]
    segs = vt.cuda.memory_snapshot()
    assert sum(x["total_size"] for x in segs) == s["reserved_bytes.all.current"]
    assert sum(x["allocated_size"] for x in segs) == s["allocated_bytes.all.current"]


def test_copy_fill_cast_replay_with_new_inputs(rng):
    static_in = vt.zeros(N, device="cuda")

    def body():
        wide = static_in.to(vt.float64)  # cast kernel, output from the pool
        copy = wide.clone()              # device copy
        copy[: N // 2].fill_(-1.0)       # fill of a view
        return copy.to(vt.float32)

    warm_up(body)
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        out = body()
    assert g.num_nodes >= 3
    for _ in range(3):
        data = rng.standard_normal(N).astype(np.float32)
        static_in.copy_(vt.from_numpy(data))  # new values into the tensor the graph reads
        g.replay()
        expect = data.copy()
        expect[: N // 2] = -1
        np.testing.assert_array_equal(out.cpu().numpy(), expect)
    check_stats()


def test_arithmetic_and_reduction_replay(rng):
    x, y = vt.zeros(N, device="cuda"), vt.zeros(N, device="cuda")
    warm_up(lambda: (x * 2 + y).sum())
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        z = x * 2 + y
        total = z.sum()
    for _ in range(3):
        a, b = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
        x.copy_(vt.from_numpy(a))
        y.copy_(vt.from_numpy(b))
        g.replay()
        np.testing.assert_allclose(z.cpu().numpy(), a * 2 + b, rtol=1e-6)
        assert total.item() == pytest.approx(float((a * 2 + b).astype(np.float64).sum()), rel=1e-4, abs=1e-2)


def test_replay_on_a_side_stream_and_many_times():
    x = vt.zeros(N, device="cuda")
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        x.fill_(3.0)
        y = x.clone()
    s = vt.cuda.Stream()
    s.wait_stream(vt.cuda.current_stream())
    with vt.cuda.stream(s):
        for _ in range(20):
            g.replay()
    vt.cuda.current_stream().wait_stream(s)
    assert y.cpu().numpy().tolist() == [3.0] * N


def test_allocations_during_capture_come_from_the_private_pool():
    x = vt.ones(N, device="cuda")
    before = x.clone()  # eager: shared pool
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        assert vt.cuda.is_current_stream_capturing()
        inner = x.clone()
        big = vt.empty(8 << 20, dtype=vt.uint8, device="cuda")  # a large-pool segment too
        big.fill_(1)
    assert not vt.cuda.is_current_stream_capturing()
    assert pool_of(before.data_ptr()) == (0, 0)
    assert pool_of(inner.data_ptr()) == g.pool() != (0, 0)
    assert pool_of(big.data_ptr()) == g.pool()
    assert {s["segment_type"] for s in pool_segments(g.pool())} == {"small", "large"}
    p = inner.data_ptr()
    del inner
    again = vt.empty(N, device="cuda")  # eager, same size: never the graph's block
    assert again.data_ptr() != p and pool_of(again.data_ptr()) == (0, 0)
    check_stats()


def test_side_stream_forked_inside_a_capture_allocates_from_the_pool():
    x = vt.ones(N, device="cuda")
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        side = vt.cuda.Stream()
        side.wait_stream(vt.cuda.current_stream())  # side joins the capture
        with vt.cuda.stream(side):
            w = x.clone()
            w.fill_(2.0)
        vt.cuda.current_stream().wait_stream(side)  # and is joined back before capture_end
        out = w.clone()
    assert pool_of(w.data_ptr()) == g.pool() and pool_of(out.data_ptr()) == g.pool()
    g.replay()
    assert out.cpu().numpy().tolist() == [2.0] * N


def test_pool_memory_lives_with_the_graph():
    vt.cuda.synchronize()
    vt.cuda.empty_cache()
    x = vt.ones(1 << 20, device="cuda")  # 4 MiB, shared
    reserved_before = vt.cuda.memory_reserved()
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        tmp = x.clone()
        out = tmp.clone()
        del tmp  # freed during the capture: back to the private pool, not the shared cache
    pool = g.pool()
    in_pool = sum(s["total_size"] for s in pool_segments(pool))
    assert in_pool >= 8 << 20
    g.replay()
    vt.cuda.empty_cache()  # the graph lives: its pool keeps its memory
    assert sum(s["total_size"] for s in pool_segments(pool)) == in_pool
    del out  # even with no tensor left in it
    vt.cuda.empty_cache()
    assert sum(s["total_size"] for s in pool_segments(pool)) == in_pool
    g.reset()  # the last graph: the pool's segments join the shared cache ...
    assert pool_segments(pool) == []
    vt.cuda.synchronize()  # ... and are freed once the replays are done
    vt.cuda.empty_cache()
    assert vt.cuda.memory_reserved() <= reserved_before
    check_stats()


def test_graph_deleted_releases_its_pool():
    x = vt.ones(N, device="cuda")
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        y = x.clone()
    pool = g.pool()
    g.replay()
    del g
    gc.collect()
    assert pool_segments(pool) == []
    assert pool_of(y.data_ptr()) == (0, 0)  # the static output outlives the graph, now in the shared cache
    assert y.cpu().numpy().tolist() == [1.0] * N


def test_two_graphs_share_one_pool_handle():
    x = vt.zeros(N, device="cuda")
    handle = vt.cuda.graph_pool_handle()
    g1, g2 = vt.cuda.CUDAGraph(), vt.cuda.CUDAGraph()
    with vt.cuda.graph(g1, pool=handle):
        a = x.to(vt.float64)
    with vt.cuda.graph(g2, pool=g1.pool()):  # the second graph reads the first one's output
        b = a.clone()
        c = b.to(vt.float32)
    assert g1.pool() == g2.pool() == handle
    assert pool_of(a.data_ptr()) == pool_of(c.data_ptr()) == handle
    for v in (1.5, -2.0):
        x.fill_(v)
        g1.replay()  # replayed in capture order, as graphs sharing a pool must be
        g2.replay()
        assert c.cpu().numpy().tolist() == [v] * N
    g1.reset()
    assert pool_segments(handle)  # g2 still holds the pool
    g2.reset()
    assert pool_segments(handle) == []
    check_stats()


@pytest.mark.parametrize("mode", ["global", "thread_local", "relaxed"])
def test_capture_error_modes(mode):
    x = vt.ones(N, device="cuda")
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g, capture_error_mode=mode):
        y = x.clone()
        y.fill_(4.0)
    g.replay()
    assert y.cpu().numpy().tolist() == [4.0] * N
    with pytest.raises(ValueError, match="capture_error_mode"):
        vt.cuda.CUDAGraph().capture_begin(capture_error_mode="sometimes")


def test_capture_on_the_default_stream_is_refused():
    g = vt.cuda.CUDAGraph()
    assert vt.cuda.current_stream() == vt.cuda.default_stream()
    with pytest.raises(RuntimeError, match="default.*stream.*vt.cuda.graph"):
        g.capture_begin()
    assert not vt.cuda.is_current_stream_capturing()
    with vt.cuda.graph(g):  # the same graph captures fine on a side stream
        y = vt.ones(10, device="cuda")
    g.replay()
    assert y.cpu().numpy().tolist() == [1.0] * 10


def test_nested_capture_and_early_replay_are_refused():
    x = vt.ones(N, device="cuda")
    g, other = vt.cuda.CUDAGraph(), vt.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="replay\\(\\) before capture"):
        g.replay()
    with vt.cuda.graph(g):
        y = x.clone()
        with pytest.raises(RuntimeError, match="already capturing"):
            g.capture_begin()
        with pytest.raises(RuntimeError, match="already capturing"):
            other.capture_begin()  # the current stream is capturing g
        with pytest.raises(RuntimeError, match="during capture"):
            g.replay()
        with pytest.raises(RuntimeError, match="already underway"), vt.cuda.graph(other):
            pass
    with pytest.raises(RuntimeError, match="already holds a captured graph"):
        g.capture_begin()
    g.replay()  # the capture survived the refused calls
    assert y.cpu().numpy().tolist() == [1.0] * N


ILLEGAL = {
    "device synchronize": lambda y: vt.cuda.synchronize(),
    "stream synchronize": lambda y: vt.cuda.current_stream().synchronize(),
    "download (.cpu())": lambda y: y.cpu(),
    ".item()": lambda y: y[0].item(),
    "pageable upload": lambda y: y.copy_(vt.ones(N)),
}


@pytest.mark.parametrize("what", list(ILLEGAL))
def test_illegal_call_in_capture_raises_and_process_stays_usable(what):
    x = vt.ones(N, device="cuda")
    g = vt.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="captur") as info, vt.cuda.graph(g):
        y = x.clone()
        ILLEGAL[what](y)
    # CUDA's refusals invalidate the capture; host copies are refused by vibetensor before CUDA sees them.
    assert "invalidated" in str(info.value) or "cannot be captured" in str(info.value)
    assert not vt.cuda.is_current_stream_capturing()
    with pytest.raises(RuntimeError, match="before capture"):
        g.replay()  # nothing was recorded
    with vt.cuda.graph(g):  # the same graph captures again
        z = x.clone()
        z.fill_(7.0)
    g.replay()
    assert z.cpu().numpy().tolist() == [7.0] * N
    w = vt.full((1000,), 2.0, device="cuda")  # eager allocation and work are fine
    assert w.cpu().numpy().sum() == 2000.0
    vt.cuda.synchronize()
    check_stats()


def test_debug_dump_writes_dot(tmp_path):
    x = vt.ones(N, device="cuda")
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        x.fill_(2.0)
    path = tmp_path / "graph.dot"
    g.debug_dump(path)
    assert "digraph" in path.read_text()
    g.reset()
    with pytest.raises(RuntimeError, match="no captured graph"):
        g.debug_dump(path)
