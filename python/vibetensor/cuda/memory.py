"""vibetensor.cuda.memory: looking into the allocators, as torch.cuda.memory.

Device memory: memory_stats()/memory_snapshot() (re-exported from vibetensor.cuda) and the allocation history
(Note [Allocation history] in core/include/vt/cuda/caching_allocator.h): _record_memory_history() turns it on
for every device, _snapshot() returns it, _dump_snapshot() pickles it in torch's format, so
torch.cuda._memory_viz and https://pytorch.org/memory_viz read the file. The keys:

    _snapshot() -> {"segments": [Segment], "device_traces": [[TraceEntry] for each device]}
    Segment: device, address, total_size, allocated_size, active_size, requested_size, stream,
             segment_type ("small" | "large"), segment_pool_id ((0, 0): shared; else a graph's pool),
             is_expandable (always False), frames (of the allocation that made it), blocks
    Block: address, size, requested_size, state ("active_allocated" | "active_pending_free" | "inactive"),
           frames (of its allocation; [] when inactive or history is off)
    Frame: {"filename", "line", "name"}, innermost call first
    TraceEntry: action ("alloc" | "free_requested" | "free_completed" | "segment_alloc" | "segment_free" |
                "oom"), addr, size, stream, time_us (wall clock), pool_id, frames, device_free (oom only)

Stacks are Python frames, captured when memory is allocated (and freed, with context="all"); C++ frames are
not collected (stacks="all" records the Python frames). With history off an allocation pays nothing for it.

Pinned host memory (Note [Pinned host memory] in core/include/vt/cuda/caching_host_allocator.h):
host_memory_stats() with torch's keys, reset_peak_host_memory_stats(), host_empty_cache().
"""
from __future__ import annotations

import pickle
import sys

from .._C import cuda as _cuda

__all__ = [
    "host_empty_cache", "host_memory_stats", "memory_snapshot", "memory_stats", "record_memory_history",
    "reset_peak_host_memory_stats",
]

_MAX_ENTRIES = (1 << 64) - 1


def _record_memory_history(enabled="all", context="all", stacks="all", max_entries=sys.maxsize, device=None,
                           clear_history=False) -> None:
    """Records allocation history on every device, as torch.cuda.memory._record_memory_history.

    enabled: None (off; drops the history), "state" (stacks of live blocks) or "all" (also a trace of
    every alloc/free, the last `max_entries` of them). context: None (no stacks), "state" (stacks of live
    blocks), "alloc" (also on alloc entries) or "all" (also the stack of each free). stacks: "python" or "all"
    (the same here: Python frames). `device` is accepted for torch's signature: history covers all devices.
    """
    _cuda.record_memory_history(enabled, context, stacks, min(int(max_entries), _MAX_ENTRIES), clear_history)


record_memory_history = _record_memory_history


def _snapshot(device=None) -> dict:
    """Segments of every device in use, with block stacks, and each device's trace (see the module doc)."""
    return _cuda._snapshot()


def _dump_snapshot(filename="dump_snapshot.pickle") -> None:
    """Pickles _snapshot() to `filename` (readable by torch.cuda._memory_viz and pytorch.org/memory_viz)."""
    snapshot = _snapshot()
    with open(filename, "wb") as f:
        pickle.dump(snapshot, f)


def host_memory_stats() -> dict:
    """Pinned host allocator statistics with torch's keys: allocations/allocated_bytes (page-locked blocks held,
    in use or cached), active_requests/active_bytes (blocks handed out and not yet reusable), num_host_alloc,
    num_host_free; plus num_ooms and pending_frees (freed blocks whose copies are still running)."""
    return _cuda.host_memory_stats()


def reset_peak_host_memory_stats() -> None:
    _cuda.reset_peak_host_memory_stats()


def host_empty_cache() -> None:
    """Returns cached pinned blocks whose copies have finished to the driver (cudaFreeHost)."""
    _cuda.host_empty_cache()


def memory_stats(device=None) -> dict:
    """vibetensor.cuda.memory_stats, here as in torch.cuda.memory."""
    from .. import cuda

    return cuda.memory_stats(device)


def memory_snapshot(device=None) -> list:
    """vibetensor.cuda.memory_snapshot, here as in torch.cuda.memory."""
    from .. import cuda

    return cuda.memory_snapshot(device)
