#pragma once
// Events and cross-stream ordering. Every event of the core is an Event: created on the device of the stream
// it is recorded on (CUDA requires that), destroyed when the object goes. wait_stream() is the one way work on
// one stream is ordered after work on another, on the same device or across devices: an event recorded on the
// producer's device that the consumer's stream waits for. The host never waits.
#include <cuda_runtime.h>

#include "vt/cuda/stream.h"

namespace vt::cuda {

class Event {
 public:
  // Timing events cost more to record; ordering needs none.
  explicit Event(int device, bool timing = false);
  ~Event();
  Event(Event&& o) noexcept : device_(o.device_), event_(o.event_) { o.event_ = nullptr; }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Records the work queued so far on `s`; `s` must be on this event's device.
  void record(Stream s);
  // Work queued later on `s` (any device) waits for the recorded work.
  void block(Stream s) const;
  bool query() const;
  void synchronize() const;  // then raises a kernel error found meanwhile (Note [Deferred kernel errors])
  int device() const { return device_; }
  cudaEvent_t native() const { return event_; }

 private:
  int device_;
  cudaEvent_t event_ = nullptr;
};

// Work queued later on `consumer` waits for the work queued so far on `producer` (no-op when they are the same
// stream). Either may be on any device.
void wait_stream(Stream consumer, Stream producer);

}  // namespace vt::cuda

namespace vt::cuda {
// Queues a kernel that spins for about `cycles` GPU clock cycles on `s` (torch.cuda._sleep): tests delay a
// producer with it so that a missing wait shows up as a wrong value instead of passing by luck.
void spin_for_cycles(Stream s, int64_t cycles);
}  // namespace vt::cuda
