// Allocation history of the caching allocator: contexts (call stacks) of live blocks and a bounded trace of
// its actions. The invariants are Note [Allocation history] in vt/cuda/caching_allocator.h; the policy that
// calls trace_event is caching_allocator.cpp. Pure C++: contexts come from a recorder the caller installs.
#include <chrono>

#include "caching_allocator_impl.h"
#include "vt/core/error.h"

namespace vt::cuda {

const char* trace_action_name(TraceAction a) {
  switch (a) {
    case TraceAction::Alloc: return "alloc";
    case TraceAction::FreeRequested: return "free_requested";
    case TraceAction::FreeCompleted: return "free_completed";
    case TraceAction::SegmentAlloc: return "segment_alloc";
    case TraceAction::SegmentFree: return "segment_free";
    case TraceAction::Oom: return "oom";
  }
  return "unknown";
}

MempoolId CachingAllocator::pool_of(const Segment* s) const { return s->owner ? s->owner->id : kSharedPool; }

ContextPtr CachingAllocator::gather_context(ContextMode at_least) {
  if (context_mode_.load(std::memory_order_relaxed) < uint8_t(at_least)) return nullptr;  // history off: done
  ContextRecorder recorder;
  {
    std::lock_guard<std::mutex> g(recorder_mu_);
    recorder = recorder_;
  }
  return recorder ? recorder() : nullptr;
}

void CachingAllocator::trace_event(TraceAction action, uintptr_t addr, size_t size, StreamId stream, MempoolId pool,
                                   ContextPtr ctx, size_t device_free) {
  if (history_ != HistoryMode::All || trace_max_ == 0) return;
  // Alloc entries carry their context from "alloc" on, free_requested from "all"; free_completed and segment
  // entries repeat the allocation's context (as torch's), which exists from "state" on.
  auto mode = ContextMode(context_mode_.load(std::memory_order_relaxed));
  if ((action == TraceAction::Alloc || action == TraceAction::Oom) && mode < ContextMode::Alloc) ctx.reset();
  int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  TraceEntry e{action, addr, size, stream, pool, now, device_free, std::move(ctx)};
  if (trace_.size() < trace_max_) {
    trace_.push_back(std::move(e));
  } else {
    trace_[trace_next_] = std::move(e);
    trace_next_ = (trace_next_ + 1) % trace_max_;
  }
}

void CachingAllocator::record_history(HistoryConfig config) {
  VT_CHECK_VALUE(config.context == ContextMode::None || config.recorder,
                 "record_history: recording contexts needs a context recorder");
  VT_CHECK_VALUE(config.max_entries > 0, "record_history: max_entries must be positive");
  bool off = config.enabled == HistoryMode::Off;
  {
    std::lock_guard<std::mutex> g(recorder_mu_);
    recorder_ = off ? ContextRecorder() : config.recorder;
  }
  std::lock_guard<std::mutex> g(mu_);
  history_ = config.enabled;
  context_mode_.store(uint8_t(off ? ContextMode::None : config.context), std::memory_order_relaxed);
  if (off || config.clear) {
    trace_.clear();
    trace_next_ = 0;
  } else if (config.max_entries != trace_max_) {  // keep the newest entries that fit the new ring
    std::vector<TraceEntry> ordered;
    ordered.reserve(trace_.size());
    for (size_t i = 0; i < trace_.size(); ++i) ordered.push_back(std::move(trace_[(trace_next_ + i) % trace_.size()]));
    if (ordered.size() > config.max_entries) ordered.erase(ordered.begin(), ordered.end() - long(config.max_entries));
    trace_.swap(ordered);
    trace_next_ = 0;
  }
  trace_max_ = config.max_entries;
}

std::vector<TraceEntry> CachingAllocator::trace() {
  std::lock_guard<std::mutex> g(mu_);
  std::vector<TraceEntry> out;
  out.reserve(trace_.size());
  for (size_t i = 0; i < trace_.size(); ++i) out.push_back(trace_[(trace_next_ + i) % trace_.size()]);
  return out;
}

}  // namespace vt::cuda
