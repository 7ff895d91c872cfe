#pragma once
// DeviceGuard: makes a device current for a scope and restores the caller's device afterwards (also when
// an exception leaves the scope). CaptureModeGuard does the same for the thread's stream-capture mode.
#include <cuda_runtime.h>

#include "vt/cuda/check.h"

namespace vt::cuda {

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    cudaGetDevice(&prev_);
    if (prev_ != device) VT_CUDA_CHECK(cudaSetDevice(device));
  }
  ~DeviceGuard() { cudaSetDevice(prev_); }
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
