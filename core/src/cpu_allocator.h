#pragma once
// The CPU allocator behind allocate_storage (see cpu_allocator.cpp for its model).
#include <cstddef>

#include "vt/core/storage.h"

namespace vt::cpu_alloc {

// 64-byte aligned memory for `nbytes` bytes (at least one); throws OutOfMemory when the system has none.
DataPtr allocate(size_t nbytes);
// Bytes held in the cache of freed large blocks (for tests and benchmarks).
size_t cached_bytes();
// Frees every cached block back to the system.
void empty_cache();

}  // namespace vt::cpu_alloc
