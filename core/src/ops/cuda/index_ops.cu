// CUDA kernels of nonzero and advanced indexing (index, index_put_ with and without accumulate). The plan
// (shapes, broadcasting of index tensors, where B goes) is the CPU's (../index_plan.h); here:
//  - gather / scatter: one thread per (position, element of the non-indexed dims), copying by element size;
//    accumulate adds atomically (duplicate indices add up, in no fixed order, as in torch). Each thread turns
//    its position's K indices into a storage offset, checking bounds: a bad index is recorded for the host's
//    next synchronization (Note [Deferred kernel errors]), which raises an IndexError naming the index and the
//    dim, and the element is skipped (no read or write outside self; a gather writes 0). The offsets were a
//    kernel of their own, a launch and an allocation more per call: m[idx] of a tiny tensor took 1.12x torch's
//    time that way; the K index loads per element replace one offset load.
//  - nonzero: cub::DeviceSelect over element indices, then coordinates; the count sizes the result, so it is
//    read back (a sync, as in torch).
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include "../index_plan.h"
#include "../words.h"
#include "atomics.cuh"
#include "kernel_errors.cuh"
#include "loops.cuh"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

cudaStream_t stream_on(const Tensor& t) { return reinterpret_cast<cudaStream_t>(current_stream(t.device().index)); }

Tensor to_device(const Tensor& t, Device d) {
  if (t.device() == d) return t;
  return ops::copy_(empty_tensor(t.sizes(), t.dtype(), d), t);
}

// ---- offsets ----
struct IndexArgs {
  const int64_t* idx[kMaxDims];
  int64_t size[kMaxDims], stride[kMaxDims], dim[kMaxDims];
  int k = 0;
};

// The storage offset (elements) of indexed position b, or -1 where one of its indices is out of range.
__device__ __forceinline__ int64_t position_offset(const IndexArgs& a, int64_t base, int64_t b,
                                                   const KernelErrorSlot& err) {
  int64_t o = base;
  for (int j = 0; j < a.k; ++j) {
    const int64_t v = a.idx[j][b];
    if (v < -a.size[j] || v >= a.size[j]) {
      report_bad_index(err, v, a.dim[j], a.size[j]);
      return -1;
    }
    o += (v < 0 ? v + a.size[j] : v) * a.stride[j];
  }
  return o;
}

void check_self_on_device(const Tensor& self, const char* name) {
  VT_CHECK(self.device().is_cuda(), name, ": indices are on a CUDA device but the indexed tensor is on ",
           self.device().str(), "; move the indices to the CPU or the tensor to the GPU");
}

// The index tensors on self's device (kept alive in `keep`) and what position_offset needs of them.
IndexArgs device_index_args(const Tensor& self, const indexing::IndexPlan& p, std::vector<Tensor>& keep) {
  IndexArgs a;
  a.k = int(p.idx.size());
  for (int j = 0; j < a.k; ++j) {
    keep.push_back(to_device(p.idx[size_t(j)], self.device()));
    a.idx[j] = keep.back().data<int64_t>();
    a.dim[j] = p.dims[size_t(j)];
    a.size[j] = self.size(a.dim[j]);
    a.stride[j] = self.stride(a.dim[j]);
  }
  return a;
}

// ---- gather / scatter ----
template <int Bytes> struct Word;
template <> struct Word<1> { using type = uint8_t; };
template <> struct Word<2> { using type = uint16_t; };
template <> struct Word<4> { using type = uint32_t; };
template <> struct Word<8> { using type = uint64_t; };

// Element i of [nb, R]: position b = i / R of B, element r = i % R of the non-indexed dims. The calculator's
// operand 0 is the dense side ([nb, rest] view), operand 1 the indexed side (self's rest dims), both in bytes.
template <typename W>
__global__ void gather_kernel(char* dst, const char* src, IndexArgs a, int64_t base, OffsetCalc<2> calc, int64_t R,
                              int64_t total, KernelErrorSlot err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[2];
    calc.get(i, o);
    const int64_t at = position_offset(a, base, i / R, err);  // -1: an out-of-range index, reported
    *reinterpret_cast<W*>(dst + o[0]) = at < 0 ? W(0) : *reinterpret_cast<const W*>(src + at * int64_t(sizeof(W)) + o[1]);
  }
}

template <typename S, bool Accumulate>
__global__ void scatter_kernel(char* dst, const char* src, IndexArgs a, int64_t base, OffsetCalc<2> calc, int64_t R,
                               int64_t total, KernelErrorSlot err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o[2];
    calc.get(i, o);
    const int64_t at = position_offset(a, base, i / R, err);
    if (at < 0) continue;  // an out-of-range index, reported
    S* d = reinterpret_cast<S*>(dst + at * int64_t(sizeof(S)) + o[1]);
    S v = *reinterpret_cast<const S*>(src + o[0]);
    if constexpr (Accumulate) atomic_add(d, v);
    else *d = v;
  }
}

// Byte strides over [nb, rest...]: operand 0 the dense side `flat`, operand 1 self's rest dims (0 along nb).
OffsetCalc<2> pair_calc(const Tensor& flat, const indexing::IndexPlan& p) {
  DimVector sizes(flat.sizes());
  const int nd = int(sizes.size());
  DimVector inner_first;  // the calculator wants dim 0 innermost
  for (int d = nd - 1; d >= 0; --d) inner_first.push_back(sizes[size_t(d)]);
  int64_t es = flat.element_size();
  return OffsetCalc<2>(inner_first, [&](int a, int k) -> int64_t {
    int d = nd - 1 - k;
    if (a == 0) return flat.stride(d) * es;
    return d == 0 ? 0 : p.rest_strides[size_t(d - 1)] * es;
  }, prod(sizes));
}

Tensor flat_view(const Tensor& bfirst, const indexing::IndexPlan& p) {
  DimVector s{prod(p.bshape)};
  for (int64_t v : p.rest_sizes) s.push_back(v);
  return ops::reshape(bfirst, s);
}

Tensor index_cuda(const Tensor& self, TensorList indices) {
  check_self_on_device(self, "index");
  indexing::IndexPlan p = indexing::plan_index(self, indices);
  std::vector<Tensor> keep;
  const IndexArgs a = device_index_args(self, p, keep);
  Tensor out = empty_tensor(indexing::result_shape(p), self.dtype(), self.device());
  Tensor flat = flat_view(indexing::b_first_view(out, p), p);
  VT_INTERNAL_ASSERT(flat.storage() == out.storage(), "index result must be a view");
  int64_t total = flat.numel(), R = total / std::max<int64_t>(prod(p.bshape), 1);
  if (total == 0) return out;
  DeviceGuard guard(self.device().index);
  OffsetCalc<2> calc = pair_calc(flat, p);
  const char* src = static_cast<const char*>(self.storage()->data());
  const int device = self.device().index;
  const KernelErrorSlot err = kernel_error_slot(device, "index", ErrorKind::Index);
  auto launch = [&](auto word) {
    using W = decltype(word);
    gather_kernel<W><<<grid_size(total), kThreads, 0, stream_on(self)>>>(flat.data_ptr(), src, a,
                                                                          self.storage_offset(), calc, R, total, err);
  };
  with_word(self.element_size(), launch);
  VT_CUDA_CHECK(cudaGetLastError());
  after_checked_launch(device, stream_on(self));
  return out;
}

Tensor index_put_cuda_(const Tensor& self, TensorList indices, const Tensor& values, bool accumulate) {
  check_self_on_device(self, "index_put_");
  indexing::IndexPlan p = indexing::plan_index(self, indices);
  // Values that alias self are read before any write (x[perm] = x must permute, not smear); their shape is
  // checked before the index bounds, as torch's order.
  Tensor src = to_device(values.storage() == self.storage() ? ops::clone(values) : values, self.device());
  Tensor v = ops::expand(src.dtype() == self.dtype() ? src : ops::to_dtype(src, self.dtype()), indexing::result_shape(p));
  std::vector<Tensor> keep;
  const IndexArgs a = device_index_args(self, p, keep);
  self.bump_version();
  Tensor flat = flat_view(indexing::b_first_view(v, p), p);
  int64_t total = flat.numel(), R = total / std::max<int64_t>(prod(p.bshape), 1);
  if (total == 0) return self;
  DeviceGuard guard(self.device().index);
  OffsetCalc<2> calc = pair_calc(flat, p);
  char* dst = static_cast<char*>(self.storage()->data());
  const int device = self.device().index;
  const KernelErrorSlot err = kernel_error_slot(device, "index_put_", ErrorKind::Index);
  VT_DISPATCH_ALL(self.dtype(), "index_put_", [&] {
    auto kernel = accumulate ? scatter_kernel<scalar_t, true> : scatter_kernel<scalar_t, false>;
    kernel<<<grid_size(total), kThreads, 0, stream_on(self)>>>(dst, flat.data_ptr(), a, self.storage_offset(), calc,
                                                                R, total, err);
  });
  VT_CUDA_CHECK(cudaGetLastError());
  after_checked_launch(device, stream_on(self));
  return self;
}

// ---- nonzero ----
struct NonzeroAt {
  const bool* flags;
  __device__ bool operator()(int64_t i) const { return flags[i]; }
};

__global__ void coordinates_kernel(const int64_t* linear, int64_t count, IndexArgs shape, int64_t* out) {
  for (int64_t h = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; h < count; h += int64_t(gridDim.x) * blockDim.x) {
    int64_t i = linear[h];
    for (int d = shape.k - 1; d >= 0; --d) {
      out[h * shape.k + d] = i % shape.size[d];
      i /= shape.size[d];
    }
  }
}

Tensor nonzero_cuda(const Tensor& self) {
  const int64_t nd = self.dim(), n = self.numel();
  VT_CHECK(n <= INT32_MAX, "nonzero: tensors of more than 2^31 - 1 elements are not supported on CUDA, got ", n);
  Tensor flags = ops::contiguous(self.dtype() == ScalarType::Bool
                                     ? self
                                     : ops::binary("vt::ne", self, scalar_to_tensor(Scalar(int64_t(0)), ScalarType::Int64)));
  DeviceGuard guard(self.device().index);
  cudaStream_t stream = stream_on(self);
  Tensor linear = empty_tensor(DimVector{std::max<int64_t>(n, 1)}, ScalarType::Int64, self.device());
  Tensor count = ops::fill_(empty_tensor(DimVector{1}, ScalarType::Int64, self.device()), Scalar(int64_t(0)));
  if (n > 0) {
    thrust::counting_iterator<int64_t> first(0);
    NonzeroAt pred{flags.data<bool>()};
    size_t temp_bytes = 0;
    VT_CUDA_CHECK(cub::DeviceSelect::If(nullptr, temp_bytes, first, linear.data<int64_t>(), count.data<int64_t>(),
                                        int(n), pred, stream));
    Tensor temp = empty_tensor(DimVector{int64_t(temp_bytes)}, ScalarType::UInt8, self.device());
    VT_CUDA_CHECK(cub::DeviceSelect::If(temp.data_ptr(), temp_bytes, first, linear.data<int64_t>(),
                                        count.data<int64_t>(), int(n), pred, stream));
  }
  int64_t hits = *ops::copy_(empty_tensor(DimVector{1}, ScalarType::Int64, kCPU), count).data<int64_t>();
  Tensor out = empty_tensor(DimVector{hits, nd}, ScalarType::Int64, self.device());
  if (hits > 0 && nd > 0) {
    IndexArgs shape;
    shape.k = int(nd);
    for (int d = 0; d < nd; ++d) shape.size[d] = self.size(d);
    coordinates_kernel<<<grid_size(hits), kThreads, 0, stream>>>(linear.data<int64_t>(), hits, shape,
                                                                  out.data<int64_t>());
    VT_CUDA_CHECK(cudaGetLastError());
  }
  return out;
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, index_cuda) {
  m.impl("nonzero", vt::DispatchKey::CUDA, &vt::cuda::nonzero_cuda);
  m.impl("index", vt::DispatchKey::CUDA, &vt::cuda::index_cuda);
  m.impl("index_put_", vt::DispatchKey::CUDA, &vt::cuda::index_put_cuda_);
}
