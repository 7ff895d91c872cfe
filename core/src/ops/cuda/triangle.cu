// The CUDA kernel of tril / triu (../triangle.h): a thread per element of the [batch, rows, cols] view, which
// copies a kept element or clears the others (in place: clears only). Elements move as unsigned words of the
// dtype's size, so four instantiations serve every dtype.
#include "../triangle.h"
#include "../words.h"
#include "loops.cuh"
#include "vt/core/dispatcher.h"

namespace vt::cuda {
namespace {

template <typename Word>
__global__ void triangle_kernel(triangle::Plan p, const Word* in, Word* out, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % p.cols, br = i / p.cols, r = br % p.rows, b = br / p.rows;
    const bool kept = triangle::keeps(p, r, c);
    if (p.in_place && kept) continue;
    Word* dst = out + b * p.out[0] + r * p.out[1] + c * p.out[2];
    *dst = kept ? in[b * p.in[0] + r * p.in[1] + c * p.in[2]] : Word(0);
  }
}

void kernel_cuda(const triangle::Plan& p, const Tensor& in, const Tensor& out) {
  const int64_t total = p.batch * p.rows * p.cols;
  DeviceGuard guard(out.device().index);
  auto stream = reinterpret_cast<cudaStream_t>(current_stream(out.device().index));
  auto launch = [&](auto word) {
    using Word = decltype(word);
    triangle_kernel<Word><<<grid_size(total), kThreads, 0, stream>>>(
        p, reinterpret_cast<const Word*>(in.data_ptr()), reinterpret_cast<Word*>(out.data_ptr()), total);
  };
  with_word(p.itemsize, launch);
  VT_CUDA_CHECK(cudaGetLastError());
}

Tensor tril_cuda(const Tensor& self, int64_t d) { return triangle::run(self, d, true, false, kernel_cuda); }
Tensor triu_cuda(const Tensor& self, int64_t d) { return triangle::run(self, d, false, false, kernel_cuda); }
Tensor tril_inplace_cuda(const Tensor& self, int64_t d) { return triangle::run(self, d, true, true, kernel_cuda); }
Tensor triu_inplace_cuda(const Tensor& self, int64_t d) { return triangle::run(self, d, false, true, kernel_cuda); }

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, triangle_cuda) {
  m.impl("tril", vt::DispatchKey::CUDA, &vt::cuda::tril_cuda);
  m.impl("triu", vt::DispatchKey::CUDA, &vt::cuda::triu_cuda);
  m.impl("tril_", vt::DispatchKey::CUDA, &vt::cuda::tril_inplace_cuda);
  m.impl("triu_", vt::DispatchKey::CUDA, &vt::cuda::triu_inplace_cuda);
}
