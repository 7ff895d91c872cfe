// CUDA kernels of vt::gather and vt::_scatter_into_ (geometry and op codes in ../gather_scatter.h). One thread
// per index element; an offset calculator over index's shape gives the element offsets of self (with the dim
// coordinate left out), index, and out/src. Scatters with a reduction use atomics (atomics.cuh), so duplicate
// indices combine in any order (Note [Scatter op codes]).
//
// Out-of-range indices: a thread that meets one skips the element and records it for the host's next
// synchronization (Note [Deferred kernel errors]), which raises torch's RuntimeError naming the index, instead
// of a device-side assert that would poison the context.
#include "../gather_scatter.h"
#include "atomics.cuh"
#include "kernel_errors.cuh"
#include "loops.cuh"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

using scatter::Geometry;
using scatter::Op;

cudaStream_t stream_of(const Tensor& t) { return reinterpret_cast<cudaStream_t>(current_stream(t.device().index)); }

// Operands: 0 self (dim stride 0), 1 index, 2 out/src; in elements; dims innermost first.
OffsetCalc<3> calc_of(const Geometry& g) {
  DimVector inner_first;
  for (int64_t d = g.ndim - 1; d >= 0; --d) inner_first.push_back(g.sizes[d]);
  return OffsetCalc<3>(inner_first, [&](int a, int k) -> int64_t {
    int64_t d = g.ndim - 1 - k;
    return a == 0 ? g.self_strides[d] : a == 1 ? g.index_strides[d] : g.other_strides[d];
  }, g.numel);
}

// Where the index runs along: the dim, its size and its stride in self; and where a bad index is reported.
struct Along {
  int64_t dim, size, stride;
  KernelErrorSlot err;
  __device__ bool in_range(int64_t v) const {
    if (v >= 0 && v < size) return true;
    report_bad_index(err, v, dim, size);
    return false;
  }
};

template <typename T>
__global__ void gather_kernel(T* out, const T* self, const int64_t* index, OffsetCalc<3> calc, int64_t n, Along a) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    calc.get(i, off);
    int64_t v = index[off[1]];
    if (a.in_range(v)) out[off[2]] = self[off[0] + v * a.stride];
  }
}

template <Op O> struct Combine {
  template <typename T> __device__ T operator()(T a, T b) const {
    using M = opmath_t<T>;
    M x = M(a), y = M(b);
    if constexpr (O == Op::Sum) return T(x + y);
    else if constexpr (O == Op::Prod) return T(x * y);
    else if constexpr (O == Op::Max) return (y != y || y > x) ? b : a;  // NaN wins, as torch's
    else return (y != y || y < x) ? b : a;
  }
};

template <typename T, Op O>
__global__ void scatter_kernel(T* self, const T* src, const int64_t* index, OffsetCalc<3> calc, int64_t n, Along a) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    calc.get(i, off);
    int64_t v = index[off[1]];
    if (!a.in_range(v)) continue;
    T* d = self + off[0] + v * a.stride;
    if constexpr (O == Op::Assign) *d = src[off[2]];
    else if constexpr (O == Op::Sum) atomic_add(d, src[off[2]]);
    else atomic_update(d, src[off[2]], Combine<O>{});
  }
}

Along along(const Geometry& g, int device, const char* op) {
  return {g.dim, g.dim_size, g.self_dim_stride, kernel_error_slot(device, op, ErrorKind::Runtime)};
}

Tensor gather_cuda(const Tensor& self, int64_t dim, const Tensor& index_in) {
  const scatter::Prepared p = scatter::prepare_gather(self, dim, index_in);
  const Tensor &index = p.index, &out = p.other;
  const Geometry& g = p.g;
  if (g.numel == 0) return out;
  const int device = self.device().index;
  DeviceGuard guard(device);
  OffsetCalc<3> calc = calc_of(g);
  const Along a = along(g, device, "gather");
  VT_DISPATCH_ALL(self.dtype(), "gather", [&] {
    gather_kernel<scalar_t><<<grid_size(g.numel), kThreads, 0, stream_of(self)>>>(
        out.data<scalar_t>(), self.data<scalar_t>(), index.data<int64_t>(), calc, g.numel, a);
  });
  VT_CUDA_CHECK(cudaGetLastError());
  after_checked_launch(device, stream_of(self));
  return out;
}

template <typename T, Op O>
void launch_scatter(const Tensor& self, const Tensor& src, const Tensor& index, const Geometry& g, const Along& a) {
  scatter_kernel<T, O><<<grid_size(g.numel), kThreads, 0, stream_of(self)>>>(
      self.data<T>(), src.data<T>(), index.data<int64_t>(), calc_of(g), g.numel, a);
}

Tensor scatter_into_cuda(const Tensor& self, int64_t dim, const Tensor& index_in, const Tensor& src, int64_t op) {
  const scatter::Prepared p = scatter::prepare_scatter(self, dim, index_in, src, op);
  const Tensor& index = p.index;
  const Geometry& g = p.g;
  if (g.numel == 0) return self;
  const int device = self.device().index;
  DeviceGuard guard(device);
  const Along e = along(g, device, "scatter");
  VT_DISPATCH_ALL(self.dtype(), "scatter", [&] {
    switch (Op(op)) {
      case Op::Assign: launch_scatter<scalar_t, Op::Assign>(self, src, index, g, e); break;
      case Op::Sum: launch_scatter<scalar_t, Op::Sum>(self, src, index, g, e); break;
      case Op::Prod: launch_scatter<scalar_t, Op::Prod>(self, src, index, g, e); break;
      case Op::Max: launch_scatter<scalar_t, Op::Max>(self, src, index, g, e); break;
      case Op::Min: launch_scatter<scalar_t, Op::Min>(self, src, index, g, e); break;
    }
  });
  VT_CUDA_CHECK(cudaGetLastError());
  after_checked_launch(device, stream_of(self));
  return self;
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, gather_scatter_cuda) {
  m.impl("gather", vt::DispatchKey::CUDA, &vt::cuda::gather_cuda);
  m.impl("_scatter_into_", vt::DispatchKey::CUDA, &vt::cuda::scatter_into_cuda);
}
