"""Streams and events: pool streams, the current-stream context, cross-stream ordering with events (never a
device synchronize), timing, and the allocator's stream-ordered reuse with record_stream on real streams."""
import pytest

import vibetensor.torch as vt

pytestmark = pytest.mark.cuda


def test_pool_streams_and_context():
    s = vt.cuda.Stream()
    assert s.cuda_stream != 0 and s.device == vt.device("cuda:0")
    assert vt.cuda.current_stream() == vt.cuda.default_stream()
    with vt.cuda.stream(s):
        assert vt.cuda.current_stream() == s
        y = vt.ones(1 << 20, device="cuda")  # allocated and filled on s
    assert vt.cuda.current_stream() == vt.cuda.default_stream()
    vt.cuda.current_stream().wait_stream(s)
    assert y.cpu().sum().item() == float(1 << 20)
    assert s.__cuda_stream__() == (0, s.cuda_stream)
    hi = vt.cuda.Stream(priority=-1)
    assert hi.cuda_stream != s.cuda_stream


def test_events_order_and_time():
    s = vt.cuda.Stream()
    start, end = vt.cuda.Event(enable_timing=True), vt.cuda.Event(enable_timing=True)
    with vt.cuda.stream(s):
        start.record()
        x = vt.zeros(1 << 24, device="cuda")
        for _ in range(4):
            x.fill_(1)
        end.record()
    end.synchronize()
    assert end.query() and start.elapsed_time(end) >= 0
    with pytest.raises(RuntimeError, match="enable_timing"):
        vt.cuda.Event().elapsed_time(end)


def test_record_stream_keeps_memory_until_the_other_stream_is_done():
    side = vt.cuda.Stream()
    x = vt.empty(1 << 20, device="cuda")  # on the default stream
    ptr = x.data_ptr()
    with vt.cuda.stream(side):
        y = x.clone()  # side reads x (through the default stream's allocation)
    x.record_stream(side)
    del x
    # While `side` might still be reading, a new allocation on the default stream must not get x's block.
    side_busy_until = vt.cuda.Event()
    side_busy_until.record(side)
    z = vt.empty(1 << 20, device="cuda")
    if not side_busy_until.query():
        assert z.data_ptr() != ptr
    side.synchronize()
    del y, z


def test_external_stream_and_stream_ordered_reuse():
    s = vt.cuda.Stream()
    ext = vt.cuda.ExternalStream(s.cuda_stream)
    assert ext == s
    with vt.cuda.stream(ext):
        a = vt.empty(1000, device="cuda")
        p = a.data_ptr()
        del a
        b = vt.empty(1000, device="cuda")  # same stream: immediate reuse
        assert b.data_ptr() == p
