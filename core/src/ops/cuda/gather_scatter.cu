// CUDA kernels of vt::gather and vt::_scatter_into_ (geometry and op codes in ../gather_scatter.h). One thread
// per index element; an offset calculator over index's shape gives the element offsets of self (with the dim
// coordinate left out), index, and out/src. Scatters with a reduction use atomics (atomics.cuh), so duplicate
// indices combine in any order (Note [Scatter op codes]).
//
// Out-of-range indices: a thread that meets one records it in a small device buffer and skips the element;
// the buffer is read back once per call (a host sync, as for advanced indexing) and raises torch's
// RuntimeError naming the index, instead of a device-side assert that would poison the context.
#include "../gather_scatter.h"
#include "atomics.cuh"
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

// err: [flag, the bad value]
__device__ bool in_range(int64_t v, int64_t size, unsigned long long* err) {
  if (v >= 0 && v < size) return true;
  if (atomicCAS(&err[0], 0ull, 1ull) == 0ull) err[1] = static_cast<unsigned long long>(v);
  return false;
}

template <typename T>
__global__ void gather_kernel(T* out, const T* self, const int64_t* index, OffsetCalc<3> calc, int64_t n,
                              int64_t dim_size, int64_t dim_stride, unsigned long long* err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    calc.get(i, off);
    int64_t v = index[off[1]];
    if (in_range(v, dim_size, err)) out[off[2]] = self[off[0] + v * dim_stride];
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
__global__ void scatter_kernel(T* self, const T* src, const int64_t* index, OffsetCalc<3> calc, int64_t n,
                               int64_t dim_size, int64_t dim_stride, unsigned long long* err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    calc.get(i, off);
    int64_t v = index[off[1]];
    if (!in_range(v, dim_size, err)) continue;
    T* d = self + off[0] + v * dim_stride;
    if constexpr (O == Op::Assign) *d = src[off[2]];
    else if constexpr (O == Op::Sum) atomic_add(d, src[off[2]]);
    else atomic_update(d, src[off[2]], Combine<O>{});
  }
}

Tensor error_buffer(const Tensor& like) {
  return ops::fill_(empty_tensor(DimVector{2}, ScalarType::Int64, like.device()), Scalar(int64_t(0)));
}

void raise_if_bad(const Tensor& err, const Geometry& g) {
  Tensor host = ops::copy_(empty_tensor(DimVector{2}, ScalarType::Int64, kCPU), err);
  const int64_t* e = host.data<int64_t>();
  VT_CHECK(!e[0], "index ", e[1], " is out of bounds for dimension ", g.dim, " with size ", g.dim_size);
}

Tensor gather_cuda(const Tensor& self, int64_t dim, const Tensor& index_in) {
  const scatter::Prepared p = scatter::prepare_gather(self, dim, index_in);
  const Tensor &index = p.index, &out = p.other;
  const Geometry& g = p.g;
  if (g.numel == 0) return out;
  DeviceGuard guard(self.device().index);
  Tensor err = error_buffer(self);
  OffsetCalc<3> calc = calc_of(g);
  auto* e = reinterpret_cast<unsigned long long*>(err.data<int64_t>());
  VT_DISPATCH_ALL(self.dtype(), "gather", [&] {
    gather_kernel<scalar_t><<<grid_size(g.numel), kThreads, 0, stream_of(self)>>>(
        out.data<scalar_t>(), self.data<scalar_t>(), index.data<int64_t>(), calc, g.numel, g.dim_size,
        g.self_dim_stride, e);
  });
  VT_CUDA_CHECK(cudaGetLastError());
  raise_if_bad(err, g);
  return out;
}

template <typename T, Op O>
void launch_scatter(const Tensor& self, const Tensor& src, const Tensor& index, const Geometry& g,
                    unsigned long long* e) {
  scatter_kernel<T, O><<<grid_size(g.numel), kThreads, 0, stream_of(self)>>>(
      self.data<T>(), src.data<T>(), index.data<int64_t>(), calc_of(g), g.numel, g.dim_size, g.self_dim_stride, e);
}

Tensor scatter_into_cuda(const Tensor& self, int64_t dim, const Tensor& index_in, const Tensor& src, int64_t op) {
  const scatter::Prepared p = scatter::prepare_scatter(self, dim, index_in, src, op);
  const Tensor& index = p.index;
  const Geometry& g = p.g;
  if (g.numel == 0) return self;
  DeviceGuard guard(self.device().index);
  Tensor err = error_buffer(self);
  auto* e = reinterpret_cast<unsigned long long*>(err.data<int64_t>());
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
  raise_if_bad(err, g);
  return self;
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, gather_scatter_cuda) {
  m.impl("gather", vt::DispatchKey::CUDA, &vt::cuda::gather_cuda);
  m.impl("_scatter_into_", vt::DispatchKey::CUDA, &vt::cuda::scatter_into_cuda);
}
