// Device enumeration through the statically linked CUDA runtime (see vt/cuda/device.h).
#include <cuda_runtime.h>

#include <mutex>

#include "vt/core/error.h"
#include "vt/cuda/device.h"

namespace vt::cuda {

namespace {
struct Probe {
  int count = 0;
  std::string reason;
};
const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      r.reason = err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice
                     ? "no CUDA driver or device found"
                     : std::string("CUDA runtime could not enumerate devices: ") + cudaGetErrorString(err);
      cudaGetLastError();  // clear the error so later calls start clean
    } else {
      r.count = n;
      if (n == 0) r.reason = "no CUDA device found";
    }
    return r;
  }();
  return p;
}
}  // namespace

int device_count() { return probe().count; }
bool is_available() { return probe().count > 0; }
std::string unavailable_reason() { return probe().reason; }

void check_device(Device d) {
  int n = device_count();
  VT_CHECK(n > 0, "cannot use device ", d.str(), ": ", unavailable_reason());
  VT_CHECK(d.index < n, "device ", d.str(), " does not exist: this machine has ", n, " CUDA device(s)");
}

}  // namespace vt::cuda
