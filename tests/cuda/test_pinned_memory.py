"""Pinned host memory from Python (Note [Pinned host memory]) and non-blocking copies: pin_memory()/is_pinned(),
factories with pin_memory=True, to/copy_/cuda(non_blocking=True), the host allocator's statistics, and pinned
copies inside CUDA graph captures. The first tests run where there is no GPU; the rest need one (marker cuda).
"""
import pytest
import vibetensor.torch as vt

N = 1 << 22  # 16 MiB of float32
no_gpu = pytest.mark.skipif(vt.cuda.is_available(), reason="checks the behaviour without a GPU")


@no_gpu
def test_without_a_gpu_pinning_says_why_and_nothing_is_pinned():
    x = vt.arange(6.0)
    assert x.is_pinned() is False
    with pytest.raises(RuntimeError, match="no CUDA device"):
        x.pin_memory()
    for factory in (vt.empty, vt.zeros, vt.ones):
        with pytest.raises(RuntimeError, match="no CUDA device"):
            factory(2, 3, pin_memory=True)
    assert vt.empty(2, pin_memory=False).shape == (2,)
    assert vt.cuda.host_memory_stats()["allocations.current"] == 0
    vt.cuda.memory.host_empty_cache()  # nothing to do, no error


def test_non_blocking_on_the_cpu_is_an_ordinary_copy():
    x = vt.arange(6.0)
    assert x.to("cpu", non_blocking=True) is x
    y = vt.zeros(6).copy_(x, non_blocking=True)
    assert y.tolist() == x.tolist()
    assert x.to(vt.float64, True).dtype == vt.float64  # to(dtype, non_blocking) positionally
    assert x.to("cpu", vt.float64, False, True).dtype == vt.float64  # to(device, dtype, non_blocking, copy)
    z = x.to("cpu", None, False, True)  # copy=True: a new tensor even with nothing to change
    assert z is not x and z.tolist() == x.tolist()


# ---- on a GPU ----

def busy(stream_seconds=0.2):
    """Queues roughly `stream_seconds` of elementwise work on the current stream and returns at once."""
    x = vt.ones(1 << 26, device="cuda")  # 256 MiB: ~0.2 ms per pass on an H100
    for _ in range(int(stream_seconds / 2e-4)):
        x.mul_(1.0)
    return x


@pytest.mark.cuda
def test_pin_memory_copies_into_page_locked_memory_keeping_layout():
    x = vt.arange(12.0).reshape(3, 4).t()
    p = x.pin_memory()
    assert p.is_pinned() and not x.is_pinned() and p.device == vt.device("cpu")
    assert p.stride() == x.stride() and p.tolist() == x.tolist()
    assert p.pin_memory() is p  # already pinned
    e = vt.ones(3).expand(4, 3).pin_memory()  # overlapping: pinned densely
    assert e.is_contiguous() and e.is_pinned() and e.tolist() == [[1.0] * 3] * 4
    assert p[1:].is_pinned()  # views share the pinned storage
    with pytest.raises(RuntimeError, match="only CPU tensors"):
        vt.ones(2, device="cuda").pin_memory()


@pytest.mark.cuda
def test_factories_with_pin_memory():
    for factory, value in ((vt.zeros, 0.0), (vt.ones, 1.0)):
        t = factory(5, 7, dtype=vt.float16, pin_memory=True)
        assert t.is_pinned() and t.dtype == vt.float16 and t.shape == (5, 7)
        assert t.float().sum().item() == value * 35
    assert vt.empty((2, 3), pin_memory=True).is_pinned()
    with pytest.raises(RuntimeError, match="only CPU tensors"):
        vt.empty(2, device="cuda", pin_memory=True)
    s = vt.cuda.host_memory_stats()
    assert s["allocations.current"] >= 1 and s["allocated_bytes.current"] >= s["active_bytes.current"]


@pytest.mark.cuda
def test_pinned_upload_with_non_blocking_does_not_wait_for_the_device():
    src = vt.full((N,), 3.0).pin_memory()
    dst = vt.empty(N, device="cuda")
    stream = vt.cuda.current_stream()
    keep = busy()
    dst.copy_(src, non_blocking=True)
    assert not stream.query(), "copy_(non_blocking=True) from pinned memory waited for the device"
    stream.synchronize()
    assert dst.sum().item() == 3.0 * N
    busy()
    dst.copy_(src)  # non_blocking=False: returns once the copy is done (the source may be reused)
    assert stream.query()
    del keep


@pytest.mark.cuda
def test_pinned_download_with_non_blocking_and_to_cpu():
    d = vt.full((N,), 2.0, device="cuda")
    out = vt.empty(N, pin_memory=True)
    stream = vt.cuda.current_stream()
    keep = busy()
    out.copy_(d, non_blocking=True)
    assert not stream.query()
    stream.synchronize()
    assert out.sum().item() == 2.0 * N
    h = d.to("cpu", non_blocking=True)  # as torch: an asynchronous download lands in pinned memory
    assert h.is_pinned()
    vt.cuda.synchronize()
    assert h.sum().item() == 2.0 * N
    assert not d.cpu().is_pinned() and d.cpu().sum().item() == 2.0 * N  # pageable: waits, as before
    del keep


@pytest.mark.cuda
def test_a_pinned_block_is_not_reused_while_its_copy_runs():
    src = vt.full((N,), 3.0).pin_memory()
    addr = src.data_ptr()
    dst = vt.empty(N, device="cuda")
    keep = busy()
    dst.copy_(src, non_blocking=True)
    del src  # freed while the upload is still queued behind `busy`
    assert vt.cuda.host_memory_stats()["pending_frees"] >= 1
    other = vt.empty(N, pin_memory=True)  # the same size class must not get the in-flight block
    assert other.data_ptr() != addr
    other.fill_(5.0)
    vt.cuda.synchronize()
    assert dst.sum().item() == 3.0 * N
    del keep, other
    vt.cuda.memory.host_empty_cache()  # the copy is done: its block is cached again, then returned
    assert vt.cuda.host_memory_stats()["pending_frees"] == 0


@pytest.mark.cuda
def test_cuda_non_blocking_and_strided_or_casting_uploads(rng):
    import numpy as np

    a = vt.from_numpy(rng.standard_normal((64, 48)).astype(np.float32))
    p = a.pin_memory()
    y = p.cuda(non_blocking=True)
    z = p.t().to("cuda", vt.float64, non_blocking=True)  # cast on the CPU into a pinned staging buffer
    w = vt.empty(48, 64, device="cuda").t()
    w.copy_(p, non_blocking=True)  # strided destination
    vt.cuda.synchronize()
    assert vt.equal(y.cpu(), a) and vt.equal(z.cpu(), a.t().to(vt.float64)) and vt.equal(w.cpu(), a)


@pytest.mark.cuda
def test_pinned_copies_are_captured_in_graphs_and_replayed():
    host = vt.full((1024,), 1.0).pin_memory()
    dev = vt.zeros(1024, device="cuda")
    out = vt.empty(1024, pin_memory=True)
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        dev.copy_(host, non_blocking=True)
        dev.mul_(2.0)
        out.copy_(dev)  # non_blocking=False inside a capture: nothing to wait for, the copy runs at replay
        scratch = vt.empty(3 << 20, dtype=vt.uint8, pin_memory=True)  # cudaHostAlloc during a capture is legal
        del scratch  # and so is its free (cached; no cudaFreeHost, no event)
    vt.cuda.synchronize()
    host.fill_(5.0)  # new input in the same pinned memory
    g.replay()
    vt.cuda.synchronize()
    assert out.tolist() == [10.0] * 1024
    with pytest.raises(RuntimeError, match="cannot be captured"), vt.cuda.graph(vt.cuda.CUDAGraph()):
        dev.copy_(vt.ones(1024))  # pageable: still refused
    with pytest.raises(RuntimeError, match="cannot be captured"), vt.cuda.graph(vt.cuda.CUDAGraph()):
        dev.copy_(host.to(vt.float64))  # needs a cast on the CPU: refused even from pinned memory
    g.reset()


@pytest.mark.cuda
def test_host_cache_statistics_and_empty_cache():
    vt.cuda.synchronize()
    vt.cuda.memory.host_empty_cache()
    base = vt.cuda.host_memory_stats()
    t = vt.empty(3 << 20, dtype=vt.uint8, pin_memory=True)  # rounds to 4 MiB
    s = vt.cuda.host_memory_stats()
    assert s["active_bytes.current"] - base["active_bytes.current"] == 4 << 20
    del t
    s = vt.cuda.host_memory_stats()
    assert s["active_bytes.current"] == base["active_bytes.current"]  # cached, no copies pending
    vt.cuda.memory.host_empty_cache()
    assert vt.cuda.host_memory_stats()["allocated_bytes.current"] <= base["allocated_bytes.current"]
    with pytest.raises(RuntimeError, match="pinned|cudaHostAlloc"):
        vt.empty(1 << 50, dtype=vt.uint8, pin_memory=True)  # 1 PiB: a clear error, and the process goes on
    assert vt.ones(4, pin_memory=True).sum().item() == 4.0


@pytest.mark.cuda
def test_memory_pinned_by_someone_else_counts_as_pinned():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    t = torch.arange(8, dtype=torch.float32).pin_memory()
    v = vt.from_dlpack(t)
    assert v.is_pinned()
    d = vt.empty(8, device="cuda")
    d.copy_(v, non_blocking=True)
    vt.cuda.synchronize()
    assert d.cpu().tolist() == list(range(8))
