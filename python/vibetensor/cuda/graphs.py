"""torch-shaped CUDA graphs: capture a sequence of kernels and copies once, replay it with one launch.

    g = vt.cuda.CUDAGraph()
    static_x = vt.zeros(n, device="cuda")
    with vt.cuda.graph(g):                 # captured on a side stream, not run
        static_y = static_x * 2 + 1
    static_x.copy_(new_values)             # new inputs go into the tensors used at capture time
    g.replay()                             # static_y now holds new_values * 2 + 1

Memory allocated during a capture comes from the graph's private pool (Note [Graph-private pool] in
core/include/vt/cuda/caching_allocator.h) and stays reserved until the graph is reset or deleted; graphs given
the same pool (graph_pool_handle(), or another graph's pool()) share memory and must be replayed in the order
they were captured. Inside a capture, anything that waits for the device (synchronize, .cpu(), .item(), an
event query) is illegal: it raises RuntimeError, the capture is discarded, and the process stays usable.
"""
from __future__ import annotations

import gc
from typing import ClassVar

from .._C import cuda as _c
from . import streams as _streams


def graph_pool_handle() -> tuple[int, int]:
    """A new memory-pool id: pass it as `pool=` to several captures to let their graphs share memory."""
    return _c.graph_pool_handle()


def is_current_stream_capturing() -> bool:
    """True while the current stream of the current device is capturing (False without a CUDA device)."""
    return _c.is_current_stream_capturing()


def _check_pool(pool):
    if pool is None:
        return None
    if not (isinstance(pool, tuple) and len(pool) == 2 and all(isinstance(i, int) for i in pool)):
        raise TypeError(f"pool must be a pool handle (a tuple of two ints from graph_pool_handle() or "
                        f"CUDAGraph.pool()), got {pool!r}")
    return pool


class CUDAGraph:
    """A CUDA graph: capture_begin()/capture_end() on a non-default stream (or use vt.cuda.graph), then replay().

    capture_error_mode: "global" (default; potentially unsafe CUDA calls in any thread fail during the capture),
    "thread_local" (only in this thread) or "relaxed" (nowhere), as torch.cuda.graph's.
    """

    def __init__(self):
        self._graph = _c.CUDAGraph()

    def capture_begin(self, pool=None, capture_error_mode: str = "global") -> None:
        self._graph.capture_begin(_check_pool(pool), capture_error_mode)

    def capture_end(self) -> None:
        self._graph.capture_end()

    def replay(self) -> None:
        """Launches the captured work on the current stream."""
        self._graph.replay()

    def reset(self) -> None:
        """Drops the captured graph and its hold on the memory pool (a capture in progress is discarded)."""
        self._graph.reset()

    def pool(self) -> tuple[int, int]:
        """This graph's memory-pool id; pass it as `pool=` to another capture to share the memory."""
        return self._graph.pool()

    def enable_debug_mode(self) -> None:
        """Kept for torch compatibility: the captured graph is always kept, so debug_dump() always works."""

    def debug_dump(self, debug_path: str) -> None:
        """Writes the captured graph as Graphviz DOT to `debug_path`."""
        self._graph.debug_dump(str(debug_path))

    @property
    def num_nodes(self) -> int:
        """Kernels, copies and other nodes in the captured graph (0 before capture_end)."""
        return self._graph.num_nodes

    def __repr__(self):
        state = "capturing" if self._graph.is_capturing else "ready" if self._graph.is_ready else "empty"
        return f"<vibetensor.cuda.CUDAGraph {state} pool={self.pool()}>"


class graph:
    """Context manager capturing its body into `cuda_graph`, as torch.cuda.graph.

    Captures on `stream` (default: one side stream per device, reused by every capture, so graphs sharing a
    pool also share its free lists). CUDA cannot capture the legacy default stream. On entry it synchronizes the
    device, collects garbage and empties the cache, so the capture starts with as much memory as possible. If
    the body raises, the capture is discarded and the graph left empty.
    """

    default_capture_stream: ClassVar[dict[int, _streams.Stream]] = {}  # device -> its capture stream

    def __init__(self, cuda_graph: CUDAGraph, pool=None, stream: _streams.Stream | None = None,
                 capture_error_mode: str = "global"):
        if stream is None:
            device = _c.current_device()
            streams = self.__class__.default_capture_stream
            if device not in streams:
                streams[device] = _streams.Stream(device)
            stream = streams[device]
        self.cuda_graph = cuda_graph
        self.pool = _check_pool(pool)
        self.capture_stream = stream
        self.capture_error_mode = capture_error_mode
        self._stream_ctx = None

    def __enter__(self):
        if _c.is_current_stream_capturing():  # refuse before the synchronize below would invalidate that capture
            raise RuntimeError("vt.cuda.graph: a capture is already underway on the current stream (nested capture "
                               "is not supported); end it first")
        _c.synchronize(self.capture_stream.device_index)
        gc.collect()
        _c.empty_cache()
        self._stream_ctx = _streams.stream(self.capture_stream)
        self._stream_ctx.__enter__()
        try:
            self.cuda_graph.capture_begin(self.pool, capture_error_mode=self.capture_error_mode)
        except BaseException:
            self._stream_ctx.__exit__(None, None, None)
            raise
        return self.cuda_graph

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            if exc_type is None:
                self.cuda_graph.capture_end()
            else:  # the body's error explains what went wrong; leave no capture behind it
                self.cuda_graph.reset()
        finally:
            self._stream_ctx.__exit__(exc_type, exc_value, traceback)
        return False
