#pragma once
// The caching allocator's internal records, shared by its policy (caching_allocator.cpp) and its graph-private
// pools (caching_allocator_pools.cpp). See Notes [Stream-ordered free] and [Graph-private pool] in
// vt/cuda/caching_allocator.h.
#include <set>

#include "vt/cuda/caching_allocator.h"

namespace vt::cuda {

// A range of device memory obtained from the backend in one call; it belongs to one stream and one pool
// (shared, or a private pool while that pool lives) and is carved into a linked list of blocks.
struct CachingAllocator::Segment {
  char* base;
  size_t size;
  PoolKind pool;
  StreamId stream;
  uint64_t serial;
  Block* head = nullptr;
  PrivatePool* owner = nullptr;  // nullptr: the shared pools
  ContextPtr context{};          // the allocation that made it (Note [Allocation history])
};

struct CachingAllocator::Block {
  Segment* seg = nullptr;
  char* ptr = nullptr;
  size_t size = 0, requested = 0;
  StreamId stream = 0;
  PoolKind pool = PoolKind::Small;
  bool allocated = false;
  int pending_events = 0;
  Block *prev = nullptr, *next = nullptr;
  std::vector<std::pair<int, StreamId>> used_on;  // (device, stream) pairs named by record_stream
  bool cached = false;             // in a free list; only such blocks may be coalesced or handed out
  bool free_traced = false;        // a free_requested entry awaits its free_completed (Note [Allocation history])
  ContextPtr context;              // who allocated it (Note [Allocation history])
  bool is_free() const { return cached; }
};

// A graph-private pool: its own free lists; its segments point at it through Segment::owner.
struct CachingAllocator::PrivatePool {
  MempoolId id;
  int use_count = 0;             // graphs holding the pool, plus captures into it not yet given to a graph
  FreeList free[2];              // by PoolKind, like the shared free_
  std::set<StreamId> replayed_on;  // streams its graphs were launched on (record_pool_use)
};

}  // namespace vt::cuda
