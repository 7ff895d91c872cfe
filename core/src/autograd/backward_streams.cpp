// Stream ordering of the backward engine (Note [Backward streams] in backward_streams.h).
#include "backward_streams.h"

#include "vt/cuda/device.h"
#include "vt/cuda/event.h"
#include "vt/cuda/memory.h"

namespace vt::autograd {

StreamRef current_stream_of(const Tensor& t) {
  if (!t.defined() || !t.is_cuda()) return {};
  return cuda::current(t.device().index);
}

void order_for_consumer(const Tensor& g, StreamRef producer, StreamRef consumer) {
  if (!g.defined() || !g.is_cuda() || !producer.valid() || !consumer.valid() || producer == consumer) return;
  cuda::wait_stream(consumer, producer);  // also across devices: a gradient copied over from another GPU
  cuda::device_allocator(g.device().index).try_record_stream(g.storage()->data(), consumer.handle, consumer.device);
}

StreamGuard::StreamGuard(StreamRef ref) : ref_(ref) {
  if (!ref_.valid()) return;
  prev_ = cuda::current_stream(ref_.device);
  cuda::set_current_stream(ref_.device, ref_.handle);
}
StreamGuard::~StreamGuard() {
  if (ref_.valid()) cuda::set_current_stream(ref_.device, prev_);
}

std::vector<StreamRef> current_streams() {
  std::vector<StreamRef> out;
  if (!cuda::is_available()) return out;
  for (int d = 0, n = cuda::device_count(); d < n; ++d) out.push_back(cuda::current(d));
  return out;
}

StreamsGuard::StreamsGuard(const std::vector<StreamRef>& streams) {
  for (const StreamRef& s : streams) guards_.push_back(std::make_unique<StreamGuard>(s));
}

void join_streams(const std::set<StreamRef>& used) {
  for (const StreamRef& s : used) cuda::wait_stream(cuda::current(s.device), s);
}

}  // namespace vt::autograd
