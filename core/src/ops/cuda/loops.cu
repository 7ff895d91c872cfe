// Launch geometry and operand planning shared by the CUDA elementwise kernels (loops.cuh).
#include <cstring>
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

bool plan_launch(TensorIterator& it, const LaunchOperands& ops, const char** ptr, uint64_t* value, uint8_t* mode) {
  VT_INTERNAL_ASSERT(it.noutputs() == 1 && it.ntensors() == ops.nin + 1, "gpu_kernel arity");
  VT_INTERNAL_ASSERT(it.operand(0).dtype() == ops.out_dtype, "gpu_kernel: output dtype");
  bool dense = it.ndim() <= 1 && (it.ndim() == 0 || it.stride(0, 0) == int64_t(ops.out_size));
  bool aligned = reinterpret_cast<uintptr_t>(it.operand(0).data_ptr()) % (ops.out_size * size_t(ops.vec)) == 0;
  for (int i = 0; i < ops.nin; ++i) {
    const Tensor& t = it.operand(1 + i);
    VT_INTERNAL_ASSERT(t.dtype() == ops.in_dtypes[i], "gpu_kernel: input dtype");
    const size_t size = ops.in_sizes[i];
    ptr[i] = nullptr;
    value[i] = 0;
    if (t.device().is_cpu()) {
      VT_INTERNAL_ASSERT(t.dim() == 0, "gpu_kernel: CPU input must be a 0-dim scalar");
      memcpy(&value[i], t.data_ptr(), size);
      mode[i] = kHostScalar;
      continue;
    }
    ptr[i] = t.data_ptr();
    if (it.is_scalar(1 + i)) {
      mode[i] = kDeviceScalar;
    } else {
      mode[i] = kDense;
      dense = dense && it.stride(1 + i, 0) == int64_t(size);
      aligned = aligned && reinterpret_cast<uintptr_t>(ptr[i]) % (size * size_t(ops.vec)) == 0;
    }
  }
  return dense && aligned;
}

}  // namespace vt::cuda
