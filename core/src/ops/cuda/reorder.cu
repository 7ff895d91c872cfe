// CUDA kernel of flip and roll (Note [Reorder plans] in ../reorder.h): one thread per output element, whose
// coordinates come from dividing its linear index by the output's sizes (multiply-shift dividers below 2^32
// elements, 64-bit division past that), each mapped to the input's through the plan. One launch, as torch's:
// the compositions it replaces took a gather per flipped dim (three kernels each) and a cat of two slices per
// rolled dim.
#include "../reorder.h"
#include "../words.h"
#include "loops.cuh"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

struct Dividers {
  IntDivider d[kMaxDims];
};

template <typename W, bool Index32>
__global__ void reorder_kernel(W* out, const W* in, const __grid_constant__ reorder::Plan p,
                               const __grid_constant__ Dividers dv, int64_t numel) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t src = 0;
    if constexpr (Index32) {
      uint32_t q = uint32_t(i);
      for (int d = p.ndim - 1; d >= 0; --d) {
        const uint32_t next = dv.d[d].div(q);
        src += reorder::source(p, d, int64_t(q - next * dv.d[d].divisor)) * p.stride[d];
        q = next;
      }
    } else {
      int64_t q = i;
      for (int d = p.ndim - 1; d >= 0; --d) {
        src += reorder::source(p, d, q % p.size[d]) * p.stride[d];
        q /= p.size[d];
      }
    }
    out[i] = in[src];
  }
}

template <typename W> void launch(const reorder::Plan& p, const Tensor& in, const Tensor& out) {
  const int64_t n = out.numel();
  auto stream = reinterpret_cast<cudaStream_t>(current_stream(out.device().index));
  W* o = reinterpret_cast<W*>(out.data_ptr());
  const W* x = reinterpret_cast<const W*>(in.data_ptr());
  Dividers dv;
  if (n <= INT32_MAX) {
    for (int d = 0; d < p.ndim; ++d) dv.d[d] = IntDivider(uint32_t(p.size[d]));
    reorder_kernel<W, true><<<grid_size(n), kThreads, 0, stream>>>(o, x, p, dv, n);
  } else {
    reorder_kernel<W, false><<<grid_size(n), kThreads, 0, stream>>>(o, x, p, dv, n);
  }
  VT_CUDA_CHECK(cudaGetLastError());
}

Tensor run(const reorder::Plan& p, const Tensor& in, const Tensor& self) {
  Tensor out = empty_tensor(self.sizes(), self.dtype(), self.device());
  if (out.numel() == 0) return out;
  DeviceGuard guard(self.device().index);
  with_word(in.element_size(), [&](auto w) { launch<decltype(w)>(p, in, out); });
  return out;
}

Tensor flip_cuda(const Tensor& self, IntArrayRef dims) { return run(reorder::flip_plan(self, dims), self, self); }

Tensor roll_cuda(const Tensor& self, IntArrayRef shifts, OptionalIntArrayRef dims) {
  Tensor flat;
  const reorder::Plan p = reorder::roll_plan(self, shifts, dims.value_or(IntArrayRef()), flat);
  return run(p, flat.defined() ? flat : self, self);
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, reorder_cuda) {
  m.impl("flip", vt::DispatchKey::CUDA, &vt::cuda::flip_cuda);
  m.impl("roll", vt::DispatchKey::CUDA, &vt::cuda::roll_cuda);
}
