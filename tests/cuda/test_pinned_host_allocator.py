"""The caching allocator for pinned host memory (Note [Pinned host memory]) over a fake device: runs without a GPU.

`record_use(p, device, stream)` is what an asynchronous copy tells the allocator; `complete(device, stream)`
says the stream has passed every event recorded on it so far. `set_capturing(True)` simulates a CUDA graph
capture: the fake device then raises on every call CUDA forbids during one (event calls, cudaFreeHost).
"""
import ctypes
import random

import pytest
import vibetensor.torch as vt
from vibetensor._C import cuda as C

KiB = 1 << 10


def fresh(capacity=1 << 24):
    return C._FakeHostAllocator(capacity)


def fill(p, n, v):
    ctypes.memset(p, v, n)


def holds(p, n, v):
    return ctypes.string_at(p, n) == bytes([v]) * n


def test_sizes_round_to_powers_of_two_of_at_least_a_page():
    assert [C._FakeHostAllocator.round_size(n) for n in (0, 1, 4096, 4097, 5000, 1 << 20)] == [
        4096, 4096, 4096, 8192, 8192, 1 << 20]


def test_block_without_copies_is_reused_at_once():
    a = fresh()
    p = a.allocate(3000)
    a.free(p)
    assert a.allocate(4000) == p  # same size class, nothing pending
    assert a.allocate(4000) != p
    s = a.memory_stats()
    assert s["num_host_alloc"] == 2 and s["allocations.current"] == 2 and s["active_requests.current"] == 2


def test_block_used_by_a_copy_waits_for_its_stream():
    a = fresh()
    p = a.allocate(10 * KiB)
    assert a.record_use(p, 0, 7)  # an async copy on stream 7 of device 0 reads the block
    a.free(p)  # no host wait: an event goes on stream 7
    assert a.outstanding_events == 1
    s = a.memory_stats()
    assert s["pending_frees"] == 1 and s["active_requests.current"] == 1
    q = a.allocate(10 * KiB)
    assert q != p  # the copy may still be running
    a.complete(0, 7)
    r = a.allocate(10 * KiB)
    assert r == p and a.outstanding_events == 0
    assert a.memory_stats()["pending_frees"] == 0


def test_every_stream_and_device_that_used_a_block_must_pass():
    a = fresh()
    p = a.allocate(100)
    a.record_use(p, 0, 1)
    a.record_use(p, 1, 1)  # the same stream handle on another device is another stream
    a.record_use(p, 0, 1)  # recorded once
    a.free(p)
    assert a.outstanding_events == 2
    a.complete(0, 1)
    assert a.allocate(100) != p
    a.complete(1, 1)
    assert a.allocate(100) == p


def test_uses_do_not_outlive_an_allocation():
    a = fresh()
    p = a.allocate(100)
    a.record_use(p, 0, 3)
    a.free(p)
    a.complete(0, 3)
    q = a.allocate(100)
    assert q == p
    a.free(q)  # the new owner made no copies: cached at once, no event
    assert a.outstanding_events == 0
    assert a.allocate(100) == p


def test_foreign_pointers_and_double_free():
    a = fresh()
    p = a.allocate(100)
    assert a.owns(p) and not a.owns(p + 64)
    assert not a.record_use(p + 64, 0, 1)  # not the start of a block: not ours, nothing recorded
    a.free(p)
    assert not a.owns(p) and not a.record_use(p, 0, 1)
    with pytest.raises(RuntimeError, match="double free"):
        a.free(p)


def test_pressure_releases_the_cache_then_a_typed_oom():
    a = fresh(capacity=64 * KiB)
    cached = [a.allocate(16 * KiB) for _ in range(3)]
    for p in cached:
        a.free(p)  # 48 KiB cached
    big = a.allocate(32 * KiB)  # needs the cache released first
    s = a.memory_stats()
    assert s["num_host_free"] == 3 and s["allocated_bytes.current"] == 32 * KiB
    with pytest.raises(vt.cuda.OutOfMemoryError, match=r"pinned host memory.*65536 bytes.*32768 bytes of pinned"):
        a.allocate(64 * KiB)
    assert a.memory_stats()["num_ooms"] == 1
    a.free(big)
    assert a.allocate(64 * KiB)  # recovered


def test_pending_blocks_are_not_released_by_pressure_or_empty_cache():
    a = fresh(capacity=64 * KiB)
    p = a.allocate(32 * KiB)
    a.record_use(p, 0, 1)
    a.free(p)
    a.empty_cache()
    assert a.host_bytes == 32 * KiB  # still in flight: neither cached nor returned
    with pytest.raises(MemoryError):
        a.allocate(64 * KiB)
    a.complete(0, 1)
    a.empty_cache()  # polls, then returns it
    assert a.host_bytes == 0 and a.memory_stats()["allocations.current"] == 0


def test_no_event_or_free_calls_during_a_capture():
    a = fresh()
    p = a.allocate(100)
    a.record_use(p, 0, 1)
    idle = a.allocate(100 * KiB)
    a.free(idle)
    a.set_capturing(True)
    a.free(p)  # deferred: recording its event now would invalidate the capture
    a.empty_cache()  # releases nothing (cudaFreeHost synchronizes)
    q = a.allocate(100)  # allocation is fine (no event polling)
    assert q != p and a.memory_stats()["pending_frees"] == 1
    a.set_capturing(False)
    assert a.outstanding_events == 0
    a.allocate(8 * KiB)  # a miss after the capture records the deferred event
    assert a.outstanding_events == 1
    a.complete(0, 1)
    assert a.allocate(100) == p


def test_stats_peaks_and_reset():
    a = fresh()
    ps = [a.allocate(4096) for _ in range(4)]
    for p in ps:
        a.free(p)
    s = a.memory_stats()
    assert s["active_requests.peak"] == 4 and s["active_requests.current"] == 0
    assert s["allocated_bytes.current"] == 4 * 4096 and s["active_bytes.freed"] == 4 * 4096
    a.reset_peak_memory_stats()
    assert a.memory_stats()["active_requests.peak"] == 0


def test_seeded_fuzz(seed):
    """Random alloc/record_use/free/complete; each live block is filled with its tag and checked at free, so a
    block handed out while still live, or before its copies finished, is caught."""
    rng = random.Random(seed)
    a = fresh(capacity=1 << 22)
    live, in_flight = {}, {}  # ptr -> (size, tag); ptr -> set of (device, stream) still running
    for i in range(3000):
        op = rng.random()
        if op < 0.4 or not live:
            size = rng.choice([rng.randint(0, 4096), rng.randint(1, 64 * KiB), rng.randint(1, 600 * KiB)])
            try:
                p = a.allocate(size)
            except MemoryError:
                continue
            assert p not in live and not in_flight.get(p), "a block was handed out before its copies ended"
            tag = i % 251
            fill(p, size, tag)
            live[p] = (size, tag)
        elif op < 0.6:
            p = rng.choice(list(live))
            use = (rng.randint(0, 1), rng.randint(0, 2))
            a.record_use(p, *use)
            in_flight.setdefault(p, set()).add(use)
        elif op < 0.85:
            p = rng.choice(list(live))
            size, tag = live.pop(p)
            assert holds(p, size, tag)
            a.free(p)
        else:
            use = (rng.randint(0, 1), rng.randint(0, 2))
            a.complete(*use)
            for uses in in_flight.values():
                uses.discard(use)
        in_flight = {p: u for p, u in in_flight.items() if u}
        s = a.memory_stats()
        assert 0 <= s["active_bytes.current"] <= s["allocated_bytes.current"] == a.host_bytes
    for p, (size, tag) in live.items():
        assert holds(p, size, tag)
        a.free(p)
    for d in range(2):
        for st in range(3):
            a.complete(d, st)
    a.empty_cache()
    s = a.memory_stats()
    assert a.host_bytes == 0 and a.outstanding_events == 0
    assert s["allocated_bytes.current"] == 0 and s["active_requests.current"] == 0 and s["pending_frees"] == 0
