// CUDA kernels of _resample and _resample_backward (Note [Resampling plans] in ../resample.h): one thread per
// output element (forward) or per gradient element (backward), its plane and coordinates found by multiply-
// shift division, its taps read from the plans. The forward is one launch for any number of resampled dims, as
// torch's upsample kernels; the composition it replaces (two gathers and a blend per dim) took about ten for a
// bilinear resize. The backward adds with atomics into a zeroed sum (float32 for the 16-bit types, then cast),
// as torch's. An index outside [0, size) other than kNoTap is reported for the next synchronisation (Note
// [Deferred kernel errors]) and read as no tap.
#include "../resample.h"
#include "../words.h"
#include "kernel_errors.cuh"
#include "loops.cuh"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

using resample::Dim;
using resample::kNoTap;
using resample::Plan;

// Element i -> (plane, o0, o1, o2) of a dense [planes, out0, out1, out2] layout, and a plane's offset in the
// tensor read. Spatial and plane counts stay below 2^31 (checked at launch), so every step but the plane
// division of a tensor past 2^31 elements is a 32-bit multiply-shift.
struct Split {
  IntDivider spatial, out2, out1, inner;
  uint32_t spatial_n = 1;
  bool index32 = true;
  __device__ void coords(int64_t i, int64_t& pl, int64_t o[3]) const {
    uint32_t s;
    if (index32) {
      const uint32_t q = spatial.div(uint32_t(i));
      pl = q, s = uint32_t(i) - q * spatial_n;
    } else {
      pl = i / spatial_n, s = uint32_t(i - pl * spatial_n);
    }
    const uint32_t q = out2.div(s), o0 = out1.div(q);
    o[0] = o0, o[1] = q - o0 * out1.divisor, o[2] = s - q * out2.divisor;
  }
  __device__ int64_t plane_offset(const Plan& p, int64_t pl) const {
    const uint32_t q = inner.div(uint32_t(pl));
    return int64_t(q) * p.outer_stride + int64_t(uint32_t(pl) - q * inner.divisor) * p.inner_stride;
  }
};

// A tap's row, checked: a row outside [0, d.in) is reported once and read as no tap.
template <typename A>
__device__ inline int64_t checked_tap(const Dim& d, int k, int64_t o, int64_t t, A& w, const KernelErrorSlot& err) {
  const int64_t r = resample::tap(d, o, t, w);
  if (r == kNoTap || (r >= 0 && r < d.in)) return r;
  report_bad_index(err, r, k, d.in);
  return kNoTap;
}

template <typename T, typename A>
__global__ void resample_kernel(T* out, const T* x, const __grid_constant__ Plan p, const __grid_constant__ Split sp,
                                int64_t total, KernelErrorSlot err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t pl, o[3];
    sp.coords(i, pl, o);
    const T* base = x + sp.plane_offset(p, pl);
    A acc0 = A(0);
    for (int64_t t0 = 0; t0 < p.dim[0].taps; ++t0) {
      A w0, w1, w2;
      const int64_t i0 = checked_tap(p.dim[0], 0, o[0], t0, w0, err);
      if (i0 == kNoTap) continue;
      A acc1 = A(0);
      for (int64_t t1 = 0; t1 < p.dim[1].taps; ++t1) {
        const int64_t i1 = checked_tap(p.dim[1], 1, o[1], t1, w1, err);
        if (i1 == kNoTap) continue;
        const T* row = base + i0 * p.dim[0].in_stride + i1 * p.dim[1].in_stride;
        A acc2 = A(0);
        for (int64_t t2 = 0; t2 < p.dim[2].taps; ++t2) {
          const int64_t i2 = checked_tap(p.dim[2], 2, o[2], t2, w2, err);
          if (i2 != kNoTap) acc2 += w2 * A(opmath_t<T>(row[i2 * p.dim[2].in_stride]));
        }
        acc1 += w1 * acc2;
      }
      acc0 += w0 * acc1;
    }
    out[i] = T(opmath_t<T>(acc0));
  }
}

template <typename W>
__global__ void gather_kernel(W* out, const W* x, const __grid_constant__ Plan p, const __grid_constant__ Split sp,
                              int64_t total, KernelErrorSlot err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t pl, o[3];
    sp.coords(i, pl, o);
    int64_t src = sp.plane_offset(p, pl);
    bool missing = false;
    for (int k = 0; k < resample::kMaxResampled; ++k) {
      int w;
      const int64_t r = checked_tap(p.dim[k], k, o[k], 0, w, err);
      missing |= r == kNoTap;
      src += r * p.dim[k].in_stride;
    }
    out[i] = missing ? W{} : x[src];
  }
}

// g dense [planes, out...]; gin the dense sums [planes, in...] (A), zero on entry.
template <typename T, typename A>
__global__ void resample_backward_kernel(A* gin, const T* g, const __grid_constant__ Plan p,
                                         const __grid_constant__ Split sp, int64_t total, KernelErrorSlot err) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t pl, o[3];
    sp.coords(i, pl, o);
    A* base = gin + pl * p.outer_stride;
    const A gv = A(opmath_t<T>(g[i]));
    for (int64_t t0 = 0; t0 < p.dim[0].taps; ++t0) {
      A w0, w1, w2;
      const int64_t i0 = checked_tap(p.dim[0], 0, o[0], t0, w0, err);
      if (i0 == kNoTap) continue;
      for (int64_t t1 = 0; t1 < p.dim[1].taps; ++t1) {
        const int64_t i1 = checked_tap(p.dim[1], 1, o[1], t1, w1, err);
        if (i1 == kNoTap) continue;
        A* row = base + i0 * p.dim[0].in_stride + i1 * p.dim[1].in_stride;
        const A w01 = w0 * w1;
        for (int64_t t2 = 0; t2 < p.dim[2].taps; ++t2) {
          const int64_t i2 = checked_tap(p.dim[2], 2, o[2], t2, w2, err);
          if (i2 != kNoTap) atomicAdd(row + i2 * p.dim[2].in_stride, (w01 * w2) * gv);
        }
      }
    }
  }
}

template <typename T> using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

Split split_of(const Plan& p, int64_t total, const char* op) {
  const int64_t spatial = p.dim[0].out * p.dim[1].out * p.dim[2].out;
  VT_CHECK(spatial <= INT32_MAX && p.planes <= INT32_MAX, op, ": at most 2^31 - 1 output elements per plane and "
           "planes, got ", spatial, " and ", p.planes);
  Split s;
  s.spatial = IntDivider(uint32_t(spatial)), s.spatial_n = uint32_t(spatial);
  s.out2 = IntDivider(uint32_t(p.dim[2].out)), s.out1 = IntDivider(uint32_t(p.dim[1].out));
  s.inner = IntDivider(uint32_t(p.inner));
  s.index32 = total <= INT32_MAX;
  return s;
}

cudaStream_t stream_on(const Tensor& t) { return reinterpret_cast<cudaStream_t>(current_stream(t.device().index)); }

Tensor resample_cuda(const Tensor& input, TensorList indices, TensorList weights) {
  DeviceGuard guard(input.device().index);
  const resample::Checked c = resample::forward_plan(input, indices, weights);
  Tensor out = empty_tensor(c.result_sizes, input.dtype(), input.device());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const Split sp = split_of(c.plan, n, "_resample");
  const int device = input.device().index;
  const KernelErrorSlot err = kernel_error_slot(device, "_resample", ErrorKind::Index);
  if (c.plan.weighted) {
    VT_DISPATCH_FLOATING(input.dtype(), "_resample", [&] {
      resample_kernel<scalar_t, Acc<scalar_t>><<<grid_size(n), kThreads, 0, stream_on(out)>>>(
          out.data<scalar_t>(), c.input.data<scalar_t>(), c.plan, sp, n, err);
    });
  } else {
    with_word(input.element_size(), [&](auto w) {
      using W = decltype(w);
      gather_kernel<W><<<grid_size(n), kThreads, 0, stream_on(out)>>>(reinterpret_cast<W*>(out.data_ptr()),
          reinterpret_cast<const W*>(c.input.data_ptr()), c.plan, sp, n, err);
    });
  }
  VT_CUDA_CHECK(cudaGetLastError());
  after_checked_launch(device, stream_on(out));
  return out;
}

Tensor resample_backward_cuda(const Tensor& grad, IntArrayRef input_sizes, TensorList indices, TensorList weights) {
  DeviceGuard guard(grad.device().index);
  const resample::Checked c = resample::backward_plan(grad, input_sizes, indices, weights);
  const ScalarType acc = grad.dtype() == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
  Tensor sums = ops::full(c.result_sizes, Scalar(int64_t(0)), acc, grad.device());
  const int64_t n = c.input.numel();
  if (n > 0 && sums.numel() > 0) {
    const Split sp = split_of(c.plan, n, "_resample_backward");
    const int device = grad.device().index;
    VT_DISPATCH_FLOATING(grad.dtype(), "_resample_backward", [&] {
      using A = Acc<scalar_t>;
      resample_backward_kernel<scalar_t, A><<<grid_size(n), kThreads, 0, stream_on(grad)>>>(
          sums.data<A>(), c.input.data<scalar_t>(), c.plan, sp, n,
          kernel_error_slot(device, "_resample_backward", ErrorKind::Index));
    });
    VT_CUDA_CHECK(cudaGetLastError());
    after_checked_launch(device, stream_on(grad));
  }
  return acc == grad.dtype() ? sums : ops::to_dtype(sums, grad.dtype());
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, resample_cuda) {
  m.impl("_resample", vt::DispatchKey::CUDA, &vt::cuda::resample_cuda);
  m.impl("_resample_backward", vt::DispatchKey::CUDA, &vt::cuda::resample_backward_cuda);
}
