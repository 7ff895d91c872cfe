// Stream ordering of the backward engine (Note [Backward streams] in backward_streams.h).
#include "backward_streams.h"

#include <cuda_runtime.h>

#include "vt/cuda/check.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/memory.h"
#include "vt/cuda/stream.h"

namespace vt::autograd {
namespace {

// `waiter` waits for the work queued so far on `target` (both streams of one device).
void stream_wait(int device, uintptr_t waiter, uintptr_t target) {
  cuda::DeviceGuard guard(device);
  cudaEvent_t e;
  VT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  VT_CUDA_CHECK(cudaEventRecord(e, reinterpret_cast<cudaStream_t>(target)));
  VT_CUDA_CHECK(cudaStreamWaitEvent(reinterpret_cast<cudaStream_t>(waiter), e, 0));
  VT_CUDA_CHECK(cudaEventDestroy(e));  // destroyed once the wait is queued; the wait still holds
}

}  // namespace

StreamRef current_stream_of(const Tensor& t) {
  if (!t.defined() || !t.is_cuda()) return {};
  int d = t.device().index;
  return {d, cuda::current_stream(d)};
}

void order_for_consumer(const Tensor& g, StreamRef producer, StreamRef consumer) {
  if (!g.defined() || !g.is_cuda() || !producer.valid() || !consumer.valid() || producer == consumer) return;
  if (producer.device != consumer.device || g.device().index != consumer.device) return;
  stream_wait(consumer.device, consumer.stream, producer.stream);
  cuda::device_allocator(consumer.device).try_record_stream(g.storage()->data(), consumer.stream);
}

StreamGuard::StreamGuard(StreamRef ref) : ref_(ref) {
  if (!ref_.valid()) return;
  prev_ = cuda::current_stream(ref_.device);
  cuda::set_current_stream(ref_.device, ref_.stream);
}
StreamGuard::~StreamGuard() {
  if (ref_.valid()) cuda::set_current_stream(ref_.device, prev_);
}

void join_streams(const std::set<StreamRef>& used) {
  for (const StreamRef& s : used) {
    uintptr_t caller = cuda::current_stream(s.device);
    if (caller != s.stream) stream_wait(s.device, caller, s.stream);
  }
}

}  // namespace vt::autograd
