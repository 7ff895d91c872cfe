#pragma once
// The caching allocator for page-locked ("pinned") host memory, the source and target of truly asynchronous
// copies between host and device.
//
// Note [Pinned host memory]
// Pinned memory comes from the backend (cudaHostAlloc) one block per request, rounded up to a power of two
// (at least 4 KiB, the driver's granularity), and is cached: a freed block serves a later request of the same
// rounded size instead of going back to the driver, because cudaHostAlloc/cudaFreeHost cost milliseconds and
// cudaFreeHost synchronizes the device. A block may be reused only after every copy that touched it has
// finished: each asynchronous copy from or into a pinned block names its stream (record_use), and the free
// records one event per such stream; the block returns to the cache when those events have completed (polled
// when a request finds no cached block of its size). Nothing here makes the host wait for the device.
// Under pressure (the backend refuses an allocation) the allocator polls pending events, returns every cached
// block to the driver and retries once; then it raises OutOfMemoryError naming the request and its own
// holdings.
// While any CUDA graph capture is underway (the backend says so) it makes no event call and no cudaFreeHost,
// which could invalidate the capture: frees with stream uses are deferred, as in Note [Graph-private pool].
// Copies recorded into a graph read or write their pinned block at every replay; like any static input of a
// graph, that tensor must outlive the graph (the allocator cannot see replays).
//
// What it deliberately does not handle: splitting blocks, cudaHostRegister of existing memory, NUMA placement.
// One mutex; the backend interface exists so the policy is tested without a GPU (tests use a fake backend).
#include <array>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vt/cuda/caching_allocator.h"

namespace vt::cuda {

// What the host allocator needs from CUDA. The CUDA implementation lives in pinned_memory.cpp.
class HostBackend {
 public:
  virtual ~HostBackend() = default;
  virtual void* malloc(size_t bytes) = 0;  // nullptr when page-locked memory cannot be had
  virtual void free(void* p) = 0;
  virtual EventId record_event(int device, StreamId stream) = 0;
  virtual bool event_done(EventId e) = 0;
  virtual void event_destroy(EventId e) = 0;
  virtual bool capture_underway() = 0;  // a CUDA graph capture is underway on some device
};

struct HostStats {
  // As torch.cuda.host_memory_stats() (torch >= 2.10): `allocations`/`allocated_bytes` count the page-locked
  // blocks held (handed out or cached: what the device allocator calls reserved), `active_requests`/
  // `active_bytes` the blocks handed out and not yet reusable (in use, or freed and awaiting their copies).
  Stat allocations, allocated_bytes, active_requests, active_bytes;
  int64_t num_host_alloc = 0, num_host_free = 0, num_ooms = 0;
  int64_t pending_frees = 0;  // freed blocks waiting for the events of their copies (current count)
};

class CachingHostAllocator {
 public:
  explicit CachingHostAllocator(std::unique_ptr<HostBackend> backend);
  ~CachingHostAllocator();
  CachingHostAllocator(const CachingHostAllocator&) = delete;

  void* allocate(size_t bytes);
  void free(void* p);
  // Work on `stream` of `device` reads or writes the block starting at `base`; its reuse waits for that work.
  // Returns false (and does nothing) when `base` is not the start of a live block of this allocator.
  bool record_use(const void* base, int device, StreamId stream);
  // Whether `base` is the start of a block of this allocator that is handed out.
  bool owns(const void* base);
  void empty_cache();
  HostStats stats();
  void reset_peak_stats();
  static size_t round_size(size_t bytes);

 private:
  struct Block {
    void* ptr;
    size_t size;
    bool allocated = false;
    int pending_events = 0;
    std::vector<std::pair<int, StreamId>> uses{};  // (device, stream) named by record_use since allocation
  };
  static int size_class(size_t rounded);
  void* take_cached(size_t size);
  void to_cache(Block* b);
  void insert_events(Block* b);
  void process_events();
  void release_cached();
  void account(Block* b, int sign);

  std::mutex mu_;
  std::unique_ptr<HostBackend> backend_;
  std::unordered_map<void*, std::unique_ptr<Block>> blocks_;  // every block held, by address
  std::array<std::vector<Block*>, 64> free_;                  // cached blocks by size class (log2 size)
  std::vector<std::pair<EventId, Block*>> pending_;
  std::vector<Block*> deferred_;  // freed during a capture; their events are recorded after it
  HostStats stats_;
};

}  // namespace vt::cuda
