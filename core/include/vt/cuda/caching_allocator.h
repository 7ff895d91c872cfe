#pragma once
// The stream-ordered caching allocator for device memory.
//
// Note [Stream-ordered free]
// Device memory is obtained from the backend (cudaMalloc) in segments and handed out as blocks. A block
// belongs to the stream it was allocated on: when freed it goes straight back to that stream's free list,
// because later work on the same stream is ordered after every earlier use. It becomes available to other
// streams only through record_stream(): a block used on stream T is freed with an event recorded on T, and
// stays "pending" until that event completes. No allocation or free synchronizes the host with the device.
//
// Segments: requests of at most 1 MiB come from 2 MiB "small" segments; larger ones from "large" segments
// (20 MiB for requests under 10 MiB, else the request rounded up to 2 MiB). Blocks are split on allocation
// and coalesced with free neighbours of the same stream on free. Blocks larger than max_split_size are never
// split (a huge cached block should not serve a tiny request).
//
// Under memory pressure the GC ladder runs, one rung at a time, retrying the allocation after each:
// (1) drain pending frees (wait for their events), (2) release fully free segments oldest first until the
// request fits, (3) release every free segment (empty_cache), (4) raise OutOfMemoryError naming the request,
// the device capacity, free memory, and allocated/reserved bytes, with a hint. A memory-fraction cap makes
// reserved bytes above fraction x capacity count as pressure too.
//
// What it deliberately does not handle: CUDA graph private pools (issue 3, next increment), expandable
// segments, IPC. One mutex per device; the backend interface exists so the policy can be tested on machines
// without a GPU (tests drive it with a fake backend).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace vt::cuda {

using StreamId = uintptr_t;  // a cudaStream_t value (0: the default stream)
using EventId = uintptr_t;

// What the allocator needs from the device. The CUDA implementation lives in caching_allocator.cu.
class MemoryBackend {
 public:
  virtual ~MemoryBackend() = default;
  virtual void* malloc(size_t bytes) = 0;  // nullptr on out-of-memory
  virtual void free(void* p) = 0;
  virtual EventId record_event(StreamId stream) = 0;
  virtual bool event_done(EventId e) = 0;
  virtual void event_wait(EventId e) = 0;  // host waits (only on the GC ladder)
  virtual void event_destroy(EventId e) = 0;
  virtual size_t capacity() = 0;
  virtual size_t free_memory() = 0;
};

struct AllocatorConfig {
  bool passthrough = false;            // backend malloc/free per allocation (for compute-sanitizer)
  size_t max_split_size = SIZE_MAX;    // blocks above this are never split
  double memory_fraction = 1.0;        // cap on reserved bytes as a fraction of capacity
  bool record_history = false;
};
// Parses "key:value,key:value" (keys: backend=native|passthrough, max_split_size_mb, memory_fraction,
// record_history=true|false); throws ValueError naming the bad key or value.
AllocatorConfig parse_alloc_conf(const std::string& text);

struct Stat {
  int64_t current = 0, peak = 0, allocated = 0, freed = 0;
  void add(int64_t n) {
    current += n;
    allocated += n;
    if (current > peak) peak = current;
  }
  void sub(int64_t n) {
    current -= n;
    freed += n;
  }
};

enum class PoolKind : int { Small = 0, Large = 1 };

struct Stats {
  // Indexed by [0] all, [1] small pool, [2] large pool, as torch's "all", "small_pool", "large_pool".
  Stat allocated_bytes[3], reserved_bytes[3], active_bytes[3], requested_bytes[3];
  Stat allocation[3], segment[3], active[3], inactive_split[3], inactive_split_bytes[3];
  int64_t num_alloc_retries = 0, num_ooms = 0, num_device_alloc = 0, num_device_free = 0, num_sync_all_streams = 0;
};

struct BlockInfo {
  uintptr_t address;
  size_t size, requested;
  std::string state;  // "active_allocated", "active_pending_free", "inactive"
};
struct SegmentInfo {
  uintptr_t address;
  size_t total_size, allocated_size, active_size;
  StreamId stream;
  std::string segment_type;  // "small" | "large"
  std::vector<BlockInfo> blocks;
};

class CachingAllocator {
 public:
  CachingAllocator(std::unique_ptr<MemoryBackend> backend, AllocatorConfig config, int device);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;

  void* allocate(size_t bytes, StreamId stream);
  void free(void* p);
  // The block holding p will also be used on `stream`: its free waits for that stream (Note above).
  void record_stream(void* p, StreamId stream);
  void empty_cache();
  void set_memory_fraction(double f);
  Stats stats();
  void reset_peak_stats();
  std::vector<SegmentInfo> snapshot();
  const AllocatorConfig& config() const { return config_; }

 private:
  struct Block;
  struct Segment;
  struct BlockLess {
    bool operator()(const Block* a, const Block* b) const;
  };
  Block* find_free(PoolKind pool, StreamId stream, size_t size);
  Block* new_segment(PoolKind pool, StreamId stream, size_t size);
  Block* split(Block* b, size_t size);
  void release_to_free_list(Block* b);
  void process_events(bool wait);
  bool release_segments(size_t needed, bool all);
  void release_segment(Segment* s);
  void account_block(Block* b, int sign);
  [[noreturn]] void raise_oom(size_t bytes);

  std::mutex mu_;
  std::unique_ptr<MemoryBackend> backend_;
  AllocatorConfig config_;
  int device_;
  std::set<Block*, BlockLess> free_[2];
  std::map<void*, Block*> active_;
  std::vector<std::unique_ptr<Segment>> segments_;
  std::vector<std::pair<EventId, Block*>> pending_;
  uint64_t segment_serial_ = 0;
  Stats stats_;
};

}  // namespace vt::cuda
