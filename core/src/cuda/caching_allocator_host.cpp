// Policy of the caching allocator for pinned host memory: see Note [Pinned host memory] in
// vt/cuda/caching_host_allocator.h. Pure C++: CUDA calls go through HostBackend (pinned_memory.cpp), so the
// tests drive this file with a fake backend on machines without a GPU.
#include "vt/cuda/caching_host_allocator.h"

#include <algorithm>
#include <bit>

#include "vt/core/error.h"

namespace vt::cuda {

namespace {
constexpr size_t kMinHostBlock = 4096;  // cudaHostAlloc hands out whole pages anyway
}  // namespace

size_t CachingHostAllocator::round_size(size_t bytes) {
  VT_CHECK_KIND(OutOfMemory, bytes <= (size_t(1) << 62), "pinned host memory: absurd request of ", bytes, " bytes");
  return std::max(kMinHostBlock, std::bit_ceil(bytes));
}

int CachingHostAllocator::size_class(size_t rounded) { return std::countr_zero(rounded); }

CachingHostAllocator::CachingHostAllocator(std::unique_ptr<HostBackend> backend) : backend_(std::move(backend)) {}

CachingHostAllocator::~CachingHostAllocator() {
  // Only the test allocators are destroyed (the process-wide one lives until exit). Blocks still handed out
  // belong to tensors that outlive us; their memory goes with the backend.
  std::lock_guard<std::mutex> g(mu_);
  if (backend_->capture_underway()) return;
  for (auto& [e, b] : pending_) backend_->event_destroy(e);
  pending_.clear();
  for (auto& [p, b] : blocks_)
    if (!b->allocated) backend_->free(p);
}

void CachingHostAllocator::account(Block* b, int sign) {
  if (sign > 0) {
    stats_.active_requests.add(1);
    stats_.active_bytes.add(int64_t(b->size));
  } else {
    stats_.active_requests.sub(1);
    stats_.active_bytes.sub(int64_t(b->size));
  }
}

void* CachingHostAllocator::take_cached(size_t size) {
  auto& list = free_[size_t(size_class(size))];
  if (list.empty()) return nullptr;
  Block* b = list.back();
  list.pop_back();
  b->allocated = true;
  account(b, +1);
  return b->ptr;
}

void* CachingHostAllocator::allocate(size_t bytes) {
  size_t size = round_size(bytes);
  {
    std::lock_guard<std::mutex> g(mu_);
    if (void* p = take_cached(size)) return p;
    process_events();  // copies that finished since give their blocks back
    if (void* p = take_cached(size)) return p;
  }
  // The backend call runs unlocked: cudaHostAlloc takes milliseconds, and frees must not wait for it.
  void* p = backend_->malloc(size);
  std::lock_guard<std::mutex> g(mu_);
  if (!p) {  // under pressure: cached blocks go back to the driver, then one retry
    if (void* q = take_cached(size)) return q;
    release_cached();
    p = backend_->malloc(size);
    if (!p) {
      ++stats_.num_ooms;
      VT_FAIL_KIND(OutOfMemory, "pinned host memory: could not allocate ", bytes, " bytes (", size,
                   " rounded up) of page-locked memory (cudaHostAlloc failed). vibetensor holds ",
                   stats_.allocated_bytes.current, " bytes of pinned memory, ", stats_.active_bytes.current,
                   " of them in use", backend_->capture_underway() ? " (a CUDA graph capture is underway, so "
                   "cached blocks were not released)" : "", "; free pinned tensors or use pageable memory");
    }
  }
  auto block = std::make_unique<Block>(Block{p, size});
  Block* b = block.get();
  blocks_.emplace(p, std::move(block));
  ++stats_.num_host_alloc;
  stats_.allocations.add(1);
  stats_.allocated_bytes.add(int64_t(size));
  b->allocated = true;
  account(b, +1);
  return p;
}

void CachingHostAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> g(mu_);
  auto it = blocks_.find(p);
  VT_CHECK(it != blocks_.end() && it->second->allocated,
           "pinned host allocator: free of a pointer it did not hand out (or a double free): ", p);
  Block* b = it->second.get();
  b->allocated = false;
  ++stats_.pending_frees;  // until it is back in the cache
  if (b->uses.empty()) {
    to_cache(b);
  } else if (backend_->capture_underway()) {
    deferred_.push_back(b);  // recording an event now could invalidate the capture
  } else {
    insert_events(b);
  }
}

void CachingHostAllocator::insert_events(Block* b) {
  for (auto [device, stream] : b->uses) {
    pending_.emplace_back(backend_->record_event(device, stream), b);
    ++b->pending_events;
  }
  b->uses.clear();
  if (b->pending_events == 0) to_cache(b);
}

void CachingHostAllocator::to_cache(Block* b) {
  b->uses.clear();
  --stats_.pending_frees;
  account(b, -1);
  free_[size_t(size_class(b->size))].push_back(b);
}

bool CachingHostAllocator::record_use(const void* base, int device, StreamId stream) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = blocks_.find(const_cast<void*>(base));
  if (it == blocks_.end() || !it->second->allocated) return false;
  auto& uses = it->second->uses;
  std::pair<int, StreamId> use{device, stream};
  if (std::find(uses.begin(), uses.end(), use) == uses.end()) uses.push_back(use);
  return true;
}

bool CachingHostAllocator::owns(const void* base) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = blocks_.find(const_cast<void*>(base));
  return it != blocks_.end() && it->second->allocated;
}

void CachingHostAllocator::process_events() {
  if (backend_->capture_underway()) return;  // no event calls during a capture
  if (!deferred_.empty()) {
    std::vector<Block*> deferred;
    deferred.swap(deferred_);
    for (Block* b : deferred) insert_events(b);
  }
  if (pending_.empty()) return;
  std::vector<std::pair<EventId, Block*>> still;
  for (auto& [e, b] : pending_) {
    if (backend_->event_done(e)) {
      backend_->event_destroy(e);
      if (--b->pending_events == 0) to_cache(b);
    } else {
      still.emplace_back(e, b);
    }
  }
  pending_.swap(still);
}

void CachingHostAllocator::release_cached() {
  if (backend_->capture_underway()) return;  // cudaFreeHost synchronizes: illegal during a capture
  for (auto& list : free_) {
    for (Block* b : list) {
      backend_->free(b->ptr);
      ++stats_.num_host_free;
      stats_.allocations.sub(1);
      stats_.allocated_bytes.sub(int64_t(b->size));
      blocks_.erase(b->ptr);
    }
    list.clear();
  }
}

void CachingHostAllocator::empty_cache() {
  std::lock_guard<std::mutex> g(mu_);
  process_events();
  release_cached();
}

HostStats CachingHostAllocator::stats() {
  std::lock_guard<std::mutex> g(mu_);
  return stats_;
}

void CachingHostAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> g(mu_);
  for (Stat* s : {&stats_.allocations, &stats_.allocated_bytes, &stats_.active_requests, &stats_.active_bytes})
    s->peak = s->current;
}

}  // namespace vt::cuda
