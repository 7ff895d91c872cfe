// Launch geometry shared by the CUDA op kernels.
#include <mutex>

#include "loops.cuh"

namespace vt::cuda {

int grid_size(int64_t work) {
  // Resident blocks of kThreads per SM times SMs, per device, read once.
  static int waves[64] = {};
  int device = 0;
  VT_CUDA_CHECK(cudaGetDevice(&device));
  int& w = waves[device & 63];
  if (w == 0) {
    int sms = 0, threads = 0;
    VT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    VT_CUDA_CHECK(cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerMultiProcessor, device));
    w = sms * (threads / kThreads);
  }
  int64_t blocks = (work + kThreads - 1) / kThreads;
  return int(blocks < w ? (blocks > 0 ? blocks : 1) : w);
}

}  // namespace vt::cuda
