#pragma once
// Streams. Each thread has a current stream per device (initially the device's default stream); tensors are
// allocated and computed on it (Note [Stream-ordered free]). The default stream is the legacy default stream
// (handle 0), except under emulation, where each logical device has one of its own (Note [Emulated devices]).
// Pool streams are created lazily, eight per device and priority, non-blocking, and handed out round-robin, like
// torch's stream pool. External streams are any cudaStream_t handle the caller owns.
//
// A raw handle does not say which device it belongs to (and handle 0 means "the legacy stream of whatever device
// is current"), so everything that crosses devices - events, waits, record_stream - takes a Stream: the pair
// {device, handle}.
#include <cuda_runtime.h>

#include "vt/cuda/caching_allocator.h"

namespace vt::cuda {

struct Stream {
  int device = -1;  // logical device index; -1: no stream (CPU work)
  StreamId handle = 0;
  bool valid() const { return device >= 0; }
  cudaStream_t native() const { return reinterpret_cast<cudaStream_t>(handle); }
  bool operator==(const Stream& o) const { return device == o.device && handle == o.handle; }
  bool operator<(const Stream& o) const { return device != o.device ? device < o.device : handle < o.handle; }
};

StreamId current_stream(int device);
void set_current_stream(int device, StreamId stream);
// The device's current stream as a Stream.
inline Stream current(int device) { return {device, current_stream(device)}; }
// 0 (the legacy default stream), or under emulation the logical device's own default stream.
StreamId default_stream(int device);
// A pool stream of `device`; priority 0 (normal) or -1 (high, as torch's negative-is-higher convention).
StreamId pool_stream(int device, int priority);
// (least, greatest) priority values the device supports; greatest is the highest priority.
std::pair<int, int> priority_range();

}  // namespace vt::cuda
