#pragma once
// DeviceGuard: makes a (logical) device current for a scope and restores the caller's device afterwards (also
// when an exception leaves the scope). Under emulation it sets the logical device's physical GPU (Note [Emulated
// devices]). CaptureModeGuard does the same for the thread's stream-capture mode.
#include <cuda_runtime.h>

#include "vt/cuda/check.h"
#include "vt/cuda/device.h"

namespace vt::cuda {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : prev_(current_device_raw()) {
    if (prev_ != device) set_device_raw(device);
  }
  ~DeviceGuard() {
    try {
      set_device_raw(prev_);
    } catch (...) {  // restoring a device that worked before cannot fail for a reason the caller could act on
    }
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
};

// Sets this thread's stream-capture interaction mode for a scope. cudaStreamCaptureModeRelaxed lets the thread
// make "potentially unsafe" calls (cudaMalloc, destroying a graph) while a capture is underway: the caching
// allocator and graph teardown use it for calls that do not conflict with capture (Note [Graph-private pool]).
class CaptureModeGuard {
 public:
  explicit CaptureModeGuard(cudaStreamCaptureMode mode) : prev_(mode) { cudaThreadExchangeStreamCaptureMode(&prev_); }
  ~CaptureModeGuard() { cudaThreadExchangeStreamCaptureMode(&prev_); }
  CaptureModeGuard(const CaptureModeGuard&) = delete;
  CaptureModeGuard& operator=(const CaptureModeGuard&) = delete;

 private:
  cudaStreamCaptureMode prev_;
};

}  // namespace vt::cuda
