#pragma once
// Note [Backward streams]
// A node runs its backward on the stream its forward ran on (Node::stream(), fixed when its first CUDA output
// was recorded), as torch does, so work a user spread over streams in forward is spread the same way in
// backward. A gradient made by one node (the producer, on its stream) and used by another (the consumer) is
// ordered with an event where it enters the consumer's input buffer - the consumer's stream waits for the
// producer's, the host never does - and the allocator is told the consumer's stream uses the memory
// (record_stream), so a free on the producer's side cannot hand it out while the consumer still reads it. When
// backward returns, the caller's current stream on every device waits for every stream the graph ran on, so the
// gradients are ready for whatever the caller does next on its stream. CPU nodes and CPU tensors skip all this.
#include <cstdint>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "vt/core/tensor.h"
#include "vt/cuda/stream.h"

namespace vt::autograd {

using StreamRef = cuda::Stream;  // {device, handle}; device -1 for a CPU node

// The current stream of t's device (invalid for a CPU tensor).
StreamRef current_stream_of(const Tensor& t);

// Makes the gradient g, produced on `producer`, safe to use on `consumer`: an event recorded on the producer's
// stream that the consumer's stream waits for (on the same device or across devices: a gradient copied over from
// another GPU), and the allocator told about the consumer's use. No-op when the streams are equal or invalid.
void order_for_consumer(const Tensor& g, StreamRef producer, StreamRef consumer);

// Current stream of `ref.device` set to `ref.stream` for the guard's lifetime (no-op for an invalid ref).
class StreamGuard {
 public:
  explicit StreamGuard(StreamRef ref);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  StreamRef ref_;
  uintptr_t prev_ = 0;
};

// The calling thread's current stream of every CUDA device (none without CUDA).
std::vector<StreamRef> current_streams();

// Makes `streams` current on this thread for the guard's lifetime: a device worker starts from its caller's
// current streams on every device, not only its own, since a node (a copy's backward) can touch several devices
// and reads their current streams (Note [Device workers]).
class StreamsGuard {
 public:
  explicit StreamsGuard(const std::vector<StreamRef>& streams);
  StreamsGuard(const StreamsGuard&) = delete;
  StreamsGuard& operator=(const StreamsGuard&) = delete;

 private:
  std::vector<std::unique_ptr<StreamGuard>> guards_;
};

// After backward: the caller's current stream of each device waits for each stream in `used` on that device.
void join_streams(const std::set<StreamRef>& used);

}  // namespace vt::autograd
