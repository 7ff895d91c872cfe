// CUDA kernels of the computed factories and random fills: the shared implementation (../factories_impl.h)
// with one thread per element (index fills) or per Philox block of four elements (random fills).
#include "../factories_impl.h"
#include "loops.cuh"

namespace vt::cuda {
namespace {

template <typename S, typename F> __global__ void index_fill_kernel(S* out, int64_t n, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = f(i);
}

template <typename S, typename Gen>
__global__ void random_fill_kernel(S* out, int64_t n, int64_t blocks, Gen gen, uint64_t seed, uint64_t offset) {
  for (int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x)
    gen(out, n, b, seed, offset);
}

struct CudaFactories {
  static constexpr bool kHost = false;
  template <typename F> static void index_fill(const Tensor& out, const F& f) {
    using S = typename fn_traits<F>::result;
    if (out.numel() == 0) return;
    DeviceGuard guard(out.device().index);
    auto stream = reinterpret_cast<cudaStream_t>(current_stream(out.device().index));
    index_fill_kernel<<<grid_size(out.numel()), kThreads, 0, stream>>>(out.data<S>(), out.numel(), f);
    VT_CUDA_CHECK(cudaGetLastError());
  }
  template <typename S, typename Gen>
  static void random_fill(const Tensor& c, int64_t blocks, const Gen& gen, uint64_t seed, uint64_t offset) {
    if (blocks == 0) return;
    DeviceGuard guard(c.device().index);
    auto stream = reinterpret_cast<cudaStream_t>(current_stream(c.device().index));
    random_fill_kernel<<<grid_size(blocks), kThreads, 0, stream>>>(c.data<S>(), c.numel(), blocks, gen, seed, offset);
    VT_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, factories_cuda) {
  vt::factories::register_factories<vt::cuda::CudaFactories>(m, vt::DispatchKey::CUDA);
}
