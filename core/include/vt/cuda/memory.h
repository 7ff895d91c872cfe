#pragma once
// Device memory for tensors: one CachingAllocator per device (Note [Stream-ordered free]), created on first
// use with the configuration in VT_CUDA_ALLOC_CONF (parsed strictly: a bad key fails there, naming it).
#include <memory>

#include "vt/core/storage.h"
#include "vt/cuda/caching_allocator.h"
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

}  // namespace vt::cuda
