#pragma once
// Streams. Each thread has a current stream per device (initially the legacy default stream, handle 0);
// tensors are allocated and computed on it (Note [Stream-ordered free]). Pool streams are created lazily,
// eight per device and priority, non-blocking, and handed out round-robin, like torch's stream pool. External
// streams are any cudaStream_t handle the caller owns.
#include "vt/cuda/caching_allocator.h"

namespace vt::cuda {

StreamId current_stream(int device);
void set_current_stream(int device, StreamId stream);
// A pool stream of `device`; priority 0 (normal) or -1 (high, as torch's negative-is-higher convention).
StreamId pool_stream(int device, int priority);
// (least, greatest) priority values the device supports; greatest is the highest priority.
std::pair<int, int> priority_range();

}  // namespace vt::cuda
