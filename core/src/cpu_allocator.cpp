// CPU allocator: aligned_alloc for small blocks, and a cache of freed large blocks reused by exact size class.
//
// Why: glibc serves blocks above its mmap threshold (at most 32 MiB, often far less) with a fresh mmap and
// unmaps them on free, so every large temporary of a training step (a 64 x 128 x 1024 float activation is
// 32 MiB) is zero-filled page by page by the kernel on first touch, every step: page faults were ~5% of the
// devbox MiniGPT step. Training allocates the same sizes step after step, so a freed block is kept and handed
// to the next request of its size class, already mapped and touched.
//
// Note [CPU block cache]: every block carries a 64-byte header holding its rounded size in front of the 64-byte
// aligned user pointer, so freeing needs no lookup. Blocks of at least kLargeBlock bytes are rounded up to a
// multiple of kSizeClass, smaller ones to 64 bytes. A freed block goes to the cache unless the cache would exceed kCacheCap, in which case it
// is freed to the system at once (no eviction policy: steady-state training fits, a one-off spike does not
// grow the cache). Reuse is by exact rounded size only. Frees may come from any thread (autograd's), so the
// cache is behind one mutex; the lock is taken once per large allocation and free, small blocks never lock.
//
// Note [CPU memory accounting]
// Every live CPU block is counted: bytes (its rounded size) and allocations, so that a frontend can check that a
// loop leaves memory where it started (the Node.js tests do). Cached blocks are not live: they leave the count
// when freed and re-enter it when handed out again. Relaxed atomics: the numbers are exact once the threads that
// allocate are quiet.
//
// Deliberately not handled: NUMA placement, pinned memory (cuda/pinned_memory.cpp), trimming on memory pressure
// beyond empty_cache().
#include "cpu_allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "vt/core/error.h"

namespace vt::cpu_alloc {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kLargeBlock = size_t(1) << 20;  // below this glibc's heap serves the block without faults
constexpr size_t kSizeClass = size_t(64) << 10;
constexpr size_t kCacheCap = size_t(1) << 30;

std::atomic<int64_t> g_live_bytes{0}, g_live_allocs{0};  // Note [CPU memory accounting]

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block base (header start)
  size_t bytes = 0;
};
Cache& cache() {
  static Cache* c = new Cache();  // leaked: frees can arrive during static destruction
  return *c;
}

size_t header_size(void* base) {
  size_t size;
  std::memcpy(&size, base, sizeof(size));
  return size;
}

void count(size_t size, int sign) {
  g_live_bytes.fetch_add(sign * int64_t(size), std::memory_order_relaxed);
  g_live_allocs.fetch_add(sign, std::memory_order_relaxed);
}

void free_small(void* base) {
  count(header_size(base), -1);
  std::free(base);
}

void free_large(void* base) {
  size_t size = header_size(base);
  count(size, -1);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.bytes + size <= kCacheCap) {
      c.free_blocks.emplace(size, base);
      c.bytes += size;
      return;
    }
  }
  std::free(base);
}

[[noreturn]] void out_of_memory(size_t nbytes) {
  VT_FAIL_KIND(OutOfMemory, "CPU out of memory: tried to allocate ", nbytes, " bytes");
}

}  // namespace

DataPtr allocate(size_t nbytes) {
  if (nbytes < kLargeBlock) {
    size_t size = (std::max<size_t>(nbytes, 1) + kAlign - 1) & ~(kAlign - 1);  // aligned_alloc wants a multiple
    void* base = std::aligned_alloc(kAlign, size + kAlign);
    if (!base) out_of_memory(nbytes);
    std::memcpy(base, &size, sizeof(size));
    count(size, +1);
    return DataPtr(static_cast<char*>(base) + kAlign, base, &free_small);
  }
  size_t size = (nbytes + kSizeClass - 1) / kSizeClass * kSizeClass;
  void* base = nullptr;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      base = it->second;
      c.free_blocks.erase(it);
      c.bytes -= size;
    }
  }
  if (!base) {
    base = std::aligned_alloc(kAlign, size + kAlign);
    if (!base) {
      empty_cache();  // the cache may hold what the system lacks
      base = std::aligned_alloc(kAlign, size + kAlign);
      if (!base) out_of_memory(nbytes);
    }
    std::memcpy(base, &size, sizeof(size));
  }
  count(size, +1);
  return DataPtr(static_cast<char*>(base) + kAlign, base, &free_large);
}

size_t cached_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.bytes;
}

void empty_cache() {
  std::multimap<size_t, void*> blocks;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    blocks.swap(c.free_blocks);
    c.bytes = 0;
  }
  for (auto& [size, base] : blocks) std::free(base);
}

}  // namespace vt::cpu_alloc

namespace vt {
CpuMemoryStats cpu_memory_stats() {
  return {cpu_alloc::g_live_bytes.load(std::memory_order_relaxed),
          cpu_alloc::g_live_allocs.load(std::memory_order_relaxed)};
}
}  // namespace vt
