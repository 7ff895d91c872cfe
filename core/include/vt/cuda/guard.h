#pragma once
// DeviceGuard: makes a device current for a scope and restores the caller's device afterwards (also when
// an exception leaves the scope).
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

}  // namespace vt::cuda
