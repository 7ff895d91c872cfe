"""The caching allocator's policy (Note [Stream-ordered free]) over a fake device: runs without a GPU.

Streams are plain integers here; `complete(s)` says stream s has passed every event recorded on it so far.
"""
import random

import pytest

from vibetensor._C import cuda as C

MiB = 1 << 20


def fresh(capacity=64 * MiB, conf=""):
    return C._FakeAllocator(capacity, conf)


def test_reuse_on_same_stream_is_immediate():
    a = fresh()
    p = a.allocate(1000, 1)
    a.free(p)
    assert a.allocate(1000, 1) == p  # same stream: ordered after the old use, reusable at once
    s = a.memory_stats()
    assert s["num_device_alloc"] == 1 and s["allocation.all.current"] == 1


def test_other_stream_does_not_take_a_block_freed_on_another():
    a = fresh()
    p = a.allocate(1000, 1)
    a.free(p)
    q = a.allocate(1000, 2)
    assert q != p


def test_record_stream_delays_reuse_until_the_event_completes():
    # Reuse-too-soon: a block used by a delayed kernel on stream 2 must not be handed out before stream 2
    # passes its free, even on the block's own stream.
    a = fresh()
    p = a.allocate(4096, 1)
    a.record_stream(p, 2)
    a.free(p)
    assert a.outstanding_events == 1
    assert a.memory_snapshot()[0]["blocks"][0]["state"] == "active_pending_free"
    q = a.allocate(4096, 1)
    assert q != p
    a.complete(2)
    r = a.allocate(4096, 1)
    assert r == p
    assert a.outstanding_events == 0


def test_split_and_coalesce():
    a = fresh()
    ps = [a.allocate(100_000, 0) for _ in range(4)]  # one 2 MiB small segment, split four ways
    segs = a.memory_snapshot()
    assert len(segs) == 1 and segs[0]["segment_type"] == "small"
    for p in ps:
        a.free(p)
    blocks = a.memory_snapshot()[0]["blocks"]
    assert len(blocks) == 1 and blocks[0]["state"] == "inactive" and blocks[0]["size"] == 2 * MiB


def test_sizes_round_and_pools():
    a = fresh()
    a.allocate(1, 0)
    a.allocate(3 * MiB, 0)
    a.allocate(30 * MiB, 0)
    kinds = sorted((s["segment_type"], s["total_size"]) for s in a.memory_snapshot())
    assert kinds == [("large", 20 * MiB), ("large", 30 * MiB), ("small", 2 * MiB)]
    s = a.memory_stats()
    assert s["requested_bytes.all.current"] == 1 + 3 * MiB + 30 * MiB
    assert s["allocated_bytes.all.current"] == 512 + 3 * MiB + 30 * MiB


def test_oom_after_gc_ladder_then_recovery():
    a = fresh(capacity=40 * MiB)
    big = a.allocate(30 * MiB, 0)
    a.free(big)  # cached: 30 MiB reserved, nothing allocated
    p = a.allocate(25 * MiB, 0)  # fits in the cached block? no: a 30 MiB block is reused (no split > 1 MiB rule)
    a.free(p)
    q = a.allocate(35 * MiB, 0)  # needs the ladder: release the cached segment, then allocate
    assert a.memory_stats()["num_alloc_retries"] >= 1
    with pytest.raises(MemoryError, match=r"Tried to allocate 20\.00 MiB.*allocated"):
        a.allocate(20 * MiB, 0)
    assert a.memory_stats()["num_ooms"] == 1
    a.free(q)
    r = a.allocate(20 * MiB, 0)  # usable again after the OOM
    a.free(r)


def test_pending_free_drained_on_pressure():
    a = fresh(capacity=40 * MiB)
    p = a.allocate(30 * MiB, 1)
    a.record_stream(p, 2)
    a.free(p)  # pending on stream 2
    q = a.allocate(30 * MiB, 1)  # the ladder waits for the event (rung 1) and reuses the block
    assert q == p
    assert a.outstanding_events == 0


def test_memory_fraction_cap():
    a = fresh(capacity=100 * MiB)
    a.set_memory_fraction(0.25)
    a.allocate(20 * MiB, 0)
    with pytest.raises(MemoryError, match="fraction"):
        a.allocate(20 * MiB, 0)
    with pytest.raises(ValueError, match="fraction"):
        a.set_memory_fraction(1.5)


def test_absurd_size_is_a_clear_oom():
    a = fresh()
    with pytest.raises(MemoryError, match="Tried to allocate.*more than its capacity"):
        a.allocate(1 << 50, 0)
    assert a.allocate(100, 0)  # still usable


def test_empty_cache_returns_free_segments():
    a = fresh()
    p = a.allocate(5 * MiB, 0)
    keep = a.allocate(100, 0)
    a.free(p)
    a.empty_cache()
    assert a.device_bytes == 2 * MiB  # only the small segment holding `keep` stays
    a.free(keep)


def test_passthrough_mode_allocates_each_request():
    a = fresh(conf="backend:passthrough")
    p = a.allocate(1000, 0)
    a.free(p)
    a.allocate(1000, 0)
    s = a.memory_stats()
    assert s["num_device_alloc"] == 2 and s["num_device_free"] == 1


def test_double_free_is_an_error():
    a = fresh()
    p = a.allocate(10, 0)
    a.free(p)
    with pytest.raises(RuntimeError, match="double free"):
        a.free(p)


@pytest.mark.parametrize("conf, message", [
    ("backend:cuda", "backend must be"), ("max_split_size_mb:abc", "needs a number"),
    ("memory_fraction:2", "memory_fraction"), ("garbage:1", "unknown key 'garbage'"), ("oops", "key:value"),
])
def test_config_is_parsed_strictly(conf, message):
    with pytest.raises(ValueError, match=message):
        C.parse_alloc_conf(conf)
    assert C.parse_alloc_conf("backend:native,max_split_size_mb:64,memory_fraction:0.5")["max_split_size"] == 64 * MiB


def test_max_split_size_keeps_big_blocks_for_big_requests():
    a = fresh(conf="max_split_size_mb:8")
    p = a.allocate(30 * MiB, 0)
    a.free(p)
    q = a.allocate(1 * MiB + 512, 0)  # must not carve the 30 MiB block
    assert q != p


def test_seeded_fuzz_over_streams(seed):
    """Random alloc/free/record_stream over several streams; every block is filled with its id and checked
    at free, so a block handed out twice (or too soon) is caught; stats stay consistent; nothing leaks."""
    rng = random.Random(seed)
    a = fresh(capacity=256 * MiB)
    live = {}  # ptr -> (size, id, stream)
    next_id = 1
    for _ in range(3000):
        op = rng.random()
        if op < 0.5 or not live:
            size = rng.choice([rng.randint(1, 4096), rng.randint(1, 2 * MiB), rng.randint(1, 24 * MiB)])
            stream = rng.randint(0, 3)
            try:
                p = a.allocate(size, stream)
            except MemoryError:
                continue
            assert p not in live
            tag = next_id % 251
            next_id += 1
            a.write(p, size, tag)
            live[p] = (size, tag, stream)
        elif op < 0.6:
            p = rng.choice(list(live))
            a.record_stream(p, rng.randint(0, 3))
        elif op < 0.95:
            p = rng.choice(list(live))
            size, tag, _ = live.pop(p)
            assert a.check(p, size, tag), "block contents changed while it was live"
            a.free(p)
        else:
            a.complete(rng.randint(0, 3))
        s = a.memory_stats()
        for key in ("allocated_bytes", "reserved_bytes", "active_bytes", "allocation", "segment"):
            assert s[f"{key}.all.current"] >= 0
            assert s[f"{key}.all.peak"] >= s[f"{key}.all.current"]
            assert s[f"{key}.all.current"] == s[f"{key}.small_pool.current"] + s[f"{key}.large_pool.current"]
        assert s["allocated_bytes.all.current"] <= s["active_bytes.all.current"] <= s["reserved_bytes.all.current"]
    for p, (size, tag, _) in live.items():
        assert a.check(p, size, tag)
        a.free(p)
    for st in range(4):
        a.complete(st)
    a.empty_cache()
    s = a.memory_stats()
    assert s["allocated_bytes.all.current"] == 0 and s["reserved_bytes.all.current"] == 0
    assert a.device_bytes == 0 and a.outstanding_events == 0
