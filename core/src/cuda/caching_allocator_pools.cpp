// Graph-private pools of the caching allocator: routing allocations of a capture into its pool, the pool's
// refcount, and handing a dead pool's memory to the shared cache. The invariants are Note [Graph-private pool]
// in vt/cuda/caching_allocator.h; the rest of the policy is caching_allocator.cpp. Pure C++ like that file:
// device calls go through MemoryBackend, so the tests drive it with a fake device that simulates captures.
#include <algorithm>

#include "caching_allocator_impl.h"
#include "vt/core/error.h"

namespace vt::cuda {

namespace {
std::string pool_str(MempoolId id) { return ::vt::detail::str_cat("(", id.first, ", ", id.second, ")"); }
}  // namespace

CachingAllocator::PrivatePool* CachingAllocator::capture_target(StreamId stream) {
  if (captures_.empty()) return nullptr;  // the common case costs one branch
  uint64_t id = backend_->capture_id(stream);
  if (id == 0) return nullptr;  // not capturing (or a capture of someone else's): the shared pools
  for (const Capture& c : captures_)
    if (c.capture_id == id) return pools_.at(c.pool).get();
  return nullptr;
}

CachingAllocator::PrivatePool* CachingAllocator::find_pool(MempoolId id, const char* what) {
  auto it = pools_.find(id);
  VT_CHECK(it != pools_.end(), what, ": no private memory pool ", pool_str(id),
           " on this device (it was never captured into, or every graph using it is gone)");
  return it->second.get();
}

void CachingAllocator::begin_allocate_to_pool(MempoolId id) {
  std::lock_guard<std::mutex> g(mu_);
  VT_CHECK(!config_.passthrough, "CUDA graph capture needs the caching allocator, but VT_CUDA_ALLOC_CONF selects ",
           "backend:passthrough, which returns memory with cudaFree while a graph may still use it; unset it to ",
           "capture graphs");
  VT_CHECK_VALUE(id != kSharedPool, "begin_allocate_to_pool: pool id (0, 0) names the shared pools, not a private one");
  for (const Capture& c : captures_)
    VT_CHECK(c.pool != id, "another capture is already allocating from memory pool ", pool_str(id),
             "; captures that share a pool must run one after the other");
  auto& pool = pools_[id];
  if (!pool) {
    pool = std::make_unique<PrivatePool>();
    pool->id = id;
  }
  ++pool->use_count;
  // A pool whose last graph went away during another capture may be taken up again before its hand-over.
  std::erase(freeable_pools_, id);
  captures_.push_back({id, 0});
}

void CachingAllocator::attach_capture(MempoolId id, uint64_t capture_id) {
  std::lock_guard<std::mutex> g(mu_);
  for (Capture& c : captures_) {
    if (c.pool == id) {
      c.capture_id = capture_id;
      return;
    }
  }
  VT_FAIL("attach_capture: no capture into memory pool ", pool_str(id), " is underway (call begin first)");
}

void CachingAllocator::end_allocate_to_pool(MempoolId id) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = std::find_if(captures_.begin(), captures_.end(), [id](const Capture& c) { return c.pool == id; });
  VT_CHECK(it != captures_.end(), "end_allocate_to_pool: no capture into memory pool ", pool_str(id),
           " is underway");
  captures_.erase(it);
  process_events(false);  // the last capture ended: deferred frees and hand-overs may proceed now
}

void CachingAllocator::release_pool(MempoolId id) {
  std::lock_guard<std::mutex> g(mu_);
  PrivatePool* p = find_pool(id, "release_pool");
  VT_INTERNAL_ASSERT(p->use_count > 0, "private pool ", pool_str(id), " released more often than taken");
  if (--p->use_count > 0) return;
  freeable_pools_.push_back(id);
  process_events(false);  // hands the pool over now, or after the captures underway end
}

void CachingAllocator::record_pool_use(MempoolId id, StreamId stream) {
  std::lock_guard<std::mutex> g(mu_);
  find_pool(id, "record_pool_use")->replayed_on.insert(stream);
}

bool CachingAllocator::capture_underway() {
  std::lock_guard<std::mutex> g(mu_);
  return !captures_.empty();
}

// The last graph using p is gone: its segments join the shared cache. Replays may still be running on the
// streams p was launched on, so free blocks become usable only after events on those streams (as with
// record_stream), and live blocks (static outputs still referenced) get those streams as uses for their free.
// Called only while no capture is underway: it records events.
void CachingAllocator::hand_over(PrivatePool* p) {
  for (auto& seg : segments_) {
    if (seg->owner != p) continue;
    Segment* s = seg.get();
    std::vector<Block*> idle;
    for (Block* b = s->head; b; b = b->next) {
      if (b->cached) {  // out of p's list first: release_to_free_list below looks neighbours up by owner
        p->free[int(b->pool)].erase(b);
        b->cached = false;
        idle.push_back(b);
      } else {
        for (StreamId r : p->replayed_on) {
          if (r == s->stream) continue;  // ordered on the segment's own stream already
          if (b->allocated) {
            std::pair<int, StreamId> use{device_, r};
            if (std::find(b->used_on.begin(), b->used_on.end(), use) == b->used_on.end()) b->used_on.push_back(use);
          } else {  // pending on record_stream events: also wait for the replays
            pending_.emplace_back(backend_->record_event(device_, r), b);
            ++b->pending_events;
          }
        }
      }
    }
    s->owner = nullptr;
    for (Block* b : idle) {
      // An idle block is active again until its events pass (as a freed block with record_stream uses is).
      for (int i : {0, 1 + int(b->pool)}) stats_.active[i].add(1), stats_.active_bytes[i].add(int64_t(b->size));
      b->used_on.clear();
      for (StreamId r : p->replayed_on) b->used_on.emplace_back(device_, r);
      insert_events(b);
    }
  }
  pools_.erase(p->id);
}

}  // namespace vt::cuda
