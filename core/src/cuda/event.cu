// Event and wait_stream (vt/cuda/event.h).
#include <memory>

#include "vt/core/error.h"
#include "vt/cuda/check.h"
#include "vt/cuda/event.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/kernel_errors.h"

namespace vt::cuda {

Event::Event(int device, bool timing) : device_(device) {
  DeviceGuard g(device);
  VT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
}

Event::~Event() {
  if (event_) cudaEventDestroy(event_);  // safe while recorded work is pending: CUDA releases it afterwards
}

void Event::record(Stream s) {
  VT_INTERNAL_ASSERT(s.device == device_, "event of cuda:", device_, " recorded on a stream of cuda:", s.device);
  DeviceGuard g(s.device);  // handle 0 names the legacy stream of the current device
  VT_CUDA_CHECK(cudaEventRecord(event_, s.native()));
}

void Event::block(Stream s) const {
  DeviceGuard g(s.device);
  VT_CUDA_CHECK(cudaStreamWaitEvent(s.native(), event_, 0));
}

bool Event::query() const {
  cudaError_t e = cudaEventQuery(event_);
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  VT_CUDA_CHECK(e);
  return true;
}

void Event::synchronize() const {
  VT_CUDA_CHECK(cudaEventSynchronize(event_));
  raise_kernel_errors();  // Note [Deferred kernel errors]
}

// Note [Reused ordering events]
// cudaStreamWaitEvent waits for the event's most recent record as of the call, so an event may be recorded
// again as soon as the wait is queued. wait_stream therefore keeps one event per thread and device instead of
// creating and destroying one per call (the creation is most of a wait's host cost).
void wait_stream(Stream consumer, Stream producer) {
  if (consumer == producer || !consumer.valid() || !producer.valid()) return;
  constexpr int kCached = 64;
  thread_local std::unique_ptr<Event> cached[kCached];
  if (producer.device >= kCached) {
    Event e(producer.device);
    e.record(producer);
    e.block(consumer);
    return;
  }
  std::unique_ptr<Event>& e = cached[producer.device];
  if (!e) e = std::make_unique<Event>(producer.device);
  e->record(producer);
  e->block(consumer);
}

}  // namespace vt::cuda

namespace vt::cuda {
namespace {
__global__ void spin_kernel(int64_t cycles) {
  int64_t start = clock64();
  while (clock64() - start < cycles) {
  }
}
}  // namespace

void spin_for_cycles(Stream s, int64_t cycles) {
  VT_CHECK_VALUE(cycles >= 0, "spin_for_cycles: cycles must be non-negative, got ", cycles);
  DeviceGuard g(s.device);
  spin_kernel<<<1, 1, 0, s.native()>>>(cycles);
  VT_CUDA_CHECK(cudaGetLastError());
}
}  // namespace vt::cuda
