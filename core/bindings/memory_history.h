#pragma once
// Python side of the allocators' history and statistics (Note [Allocation history]): the context recorder that
// walks the Python frames, torch's argument spellings for _record_memory_history, and the snapshot and trace
// in torch's dictionary format (keys listed in python/vibetensor/cuda/memory.py).
#include "common.h"
#include "vt/cuda/caching_allocator.h"

namespace vt::py {

// The Python frames of the calling thread, innermost first (empty where the thread never ran Python).
cuda::ContextPtr python_context();
// enabled: None | False | True | "state" | "all"; context: None | "state" | "alloc" | "all"; stacks: "python" |
// "all" (C++ frames are not collected: "all" records the Python frames). ValueError names a bad argument.
cuda::HistoryConfig history_config(nb::handle enabled, nb::handle context, const std::string& stacks,
                                   size_t max_entries, bool clear, cuda::ContextRecorder recorder);
void stat_entries(nb::dict& d, const std::string& name, const cuda::Stat& st);
nb::dict stats_dict(const cuda::Stats& s);
// Segments as torch.cuda.memory_snapshot(); blocks and segments carry "frames".
nb::list snapshot_list(const std::vector<cuda::SegmentInfo>& segs, int device);
nb::list trace_list(const std::vector<cuda::TraceEntry>& trace);

}  // namespace vt::py
