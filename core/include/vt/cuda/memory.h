#pragma once
// Device memory for tensors: one CachingAllocator per device (Note [Stream-ordered free]), created on first
// use with the configuration in VT_CUDA_ALLOC_CONF (parsed strictly: a bad key fails there, naming it). Pinned
// host memory: one CachingHostAllocator for the process (Note [Pinned host memory]), created on first use.
#include <memory>

#include "vt/core/storage.h"
#include "vt/core/tensor.h"
#include "vt/cuda/caching_allocator.h"
#include "vt/cuda/caching_host_allocator.h"
#include "vt/cuda/stream.h"

namespace vt::cuda {

int current_device();
void set_device(int device);
CachingAllocator& device_allocator(int device);
// The allocator of `device` if something has created it, else nullptr (asking creates no CUDA context).
CachingAllocator* device_allocator_if_created(int device);
// Whether any device's allocator has a CUDA graph capture underway (Note [Graph-private pool]).
bool any_capture_underway();
// Allocation history for every device, present and future (Note [Allocation history]).
void set_memory_history(const HistoryConfig& config);
// Makes `stream` (a DLPack stream value: 1 legacy default, 2 per-thread default, else a handle) wait for the
// work queued so far on `device`'s current stream, with an event (never a host synchronization).
void order_stream_after_current(int device, int64_t stream);
// Storage of `nbytes` on CUDA device d (index -1: the current device).
std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device d);

// ---- pinned host memory (pinned_memory.cpp) ----
// The process's pinned host allocator; raises RuntimeError naming "no CUDA device" where there is none.
CachingHostAllocator& host_allocator();
CachingHostAllocator* host_allocator_if_created();
// CPU storage in page-locked memory; its deleter returns the block to the pinned cache.
std::shared_ptr<Storage> allocate_pinned_storage(size_t nbytes);
// An uninitialised contiguous CPU tensor in pinned memory.
Tensor empty_pinned(IntArrayRef sizes, ScalarType dtype);
enum class HostMemory : uint8_t {
  Pageable,
  PinnedCached,   // a block of host_allocator(): copies record their stream on it
  PinnedForeign,  // page-locked by someone else (cudaHostAlloc/cudaHostRegister outside vibetensor)
};
// What kind of host memory starts at `base` (a storage's data pointer). Foreign pinned memory is recognised
// only when `probe_foreign` (one cudaPointerGetAttributes call).
HostMemory host_memory_kind(const void* base, bool probe_foreign);
// Work queued on `stream` of `device` uses the pinned block at `base` (no-op for other memory).
void record_host_use(const void* base, int device, StreamId stream);

}  // namespace vt::cuda
