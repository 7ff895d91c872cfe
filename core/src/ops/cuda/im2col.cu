// CUDA kernels of vt::im2col and vt::col2im: one thread per output element, running the element math of
// ../im2col_impl.h (the CPU's own code), so the two backends agree bit for bit. col2im gathers per pixel and
// needs no atomics.
#include "../im2col_impl.h"
#include "loops.cuh"
#include "vt/core/dispatcher.h"

namespace vt::cuda {
namespace {

template <typename T>
__global__ void im2col_kernel(T* out, const T* in, im2col::Geometry g, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = im2col::im2col_stored_at(g, in, i);
}

template <typename T>
__global__ void col2im_kernel(T* out, const T* cols, im2col::Geometry g, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = im2col::col2im_at(g, cols, i);
}

cudaStream_t stream_of(const Tensor& t) { return reinterpret_cast<cudaStream_t>(current_stream(t.device().index)); }

Tensor im2col_cuda(const Tensor& input, IntArrayRef kernel, IntArrayRef dilation, IntArrayRef padding, IntArrayRef stride) {
  if (input.dim() == 3)
    return im2col::without_batch_dim(im2col_cuda(im2col::with_batch_dim(input), kernel, dilation, padding, stride));
  im2col::Geometry g = im2col::plan_im2col(input, kernel, dilation, padding, stride);
  Tensor out = empty_tensor(DimVector{g.N, g.oh * g.ow, g.C * g.kh * g.kw}, input.dtype(), input.device());
  const int64_t total = out.numel();  // stored [N, L, C*K], returned as [N, C*K, L] (Note [Column layout])
  if (total == 0) return im2col::columns_alias(out);
  DeviceGuard guard(input.device().index);
  VT_DISPATCH_FLOATING(input.dtype(), "im2col", [&] {
    im2col_kernel<scalar_t><<<grid_size(total), kThreads, 0, stream_of(input)>>>(out.data<scalar_t>(),
                                                                               input.data<scalar_t>(), g, total);
  });
  VT_CUDA_CHECK(cudaGetLastError());
  return im2col::columns_alias(out);
}

Tensor col2im_cuda(const Tensor& cols, IntArrayRef output_size, IntArrayRef kernel, IntArrayRef dilation,
                   IntArrayRef padding, IntArrayRef stride) {
  if (cols.dim() == 2)
    return im2col::without_batch_dim(
        col2im_cuda(im2col::with_batch_dim(cols), output_size, kernel, dilation, padding, stride));
  im2col::Geometry g = im2col::plan_col2im(cols, output_size, kernel, dilation, padding, stride);
  Tensor out = empty_tensor(DimVector{g.N, g.C, g.H, g.W}, cols.dtype(), cols.device());
  const int64_t total = out.numel();
  if (total == 0) return out;
  DeviceGuard guard(cols.device().index);
  VT_DISPATCH_FLOATING(cols.dtype(), "col2im", [&] {
    col2im_kernel<scalar_t><<<grid_size(total), kThreads, 0, stream_of(cols)>>>(out.data<scalar_t>(),
                                                                              cols.data<scalar_t>(), g, total);
  });
  VT_CUDA_CHECK(cudaGetLastError());
  return out;
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, im2col_cuda) {
  m.impl("im2col", vt::DispatchKey::CUDA, &vt::cuda::im2col_cuda);
  m.impl("col2im", vt::DispatchKey::CUDA, &vt::cuda::col2im_cuda);
}
