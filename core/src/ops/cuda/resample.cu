// CUDA kernels of _resample and _resample_backward (Note [Resampling plans] in ../resample.h): a thread per
// output position and run of planes where the taps fit registers (Note [Planes per thread]), else a thread per
// output element; a thread per gradient element in the backward. Coordinates come from multiply-shift
// division, taps from the plans. The forward is one launch for any number of resampled dims, as torch's upsample
// kernels; the composition it replaces (two gathers and a blend per dim) took about ten for a bilinear resize.
// The backward adds with atomics into a zeroed sum (float32 for the 16-bit types, then cast), as torch's; with
// adjoint plans (Note [Adjoint plans]) the gradient is a forward launch instead. An index outside [0, size)
// other than kNoTap is reported for the next synchronisation (Note [Deferred kernel errors]) and read as no tap.
//
// Note [Taps in registers]
// A thread's work is a handful of loads and multiply-adds, so what it spends finding its taps decides the
// kernel's rate. When every dim has at most kRegisterTaps taps (nearest 1, linear 2, cubic 4) and a plane's rows
// lie within 2^31 elements, a thread reads each dim's taps from the plans once, as 32-bit element offsets and
// weights held in registers (the arrays are indexed only by unrolled loop counters, so they never spill to
// local memory), and the blend unrolls over them; a gather adds its rows' offsets in 32 bits. The general
// kernels (wider antialiased plans, planes past 2^31 elements) read the plans inside their loops with 64-bit
// offsets. On an H100 this took the bicubic forward from 2.09x torch's time to 1.17x, trilinear from 3.08x to
// 2.37x, a U-Net's 128 x 128 bilinear from 2.61x to 2.36x; what was left there was each output's index
// arithmetic (its coordinates by division, a plan read per dim), which Note [Planes per thread] shares.
// The sums keep the general kernels' order.
//
// Note [Planes per thread]
// Every plane is resampled alike, so the register kernels give a thread one output position and a run of
// planes: the position's coordinates and taps are found once, then each plane costs its loads, multiply-adds
// and one store (the plane's offsets advance by addition). Consecutive threads take consecutive positions of
// the last dim, so a warp's loads and stores stay coalesced within a plane, as before. The grid is the positions
// (blockIdx.x) times enough runs of planes (blockIdx.y, at most 65535) for about two waves of threads. Planes
// of fewer positions than a warp take the general kernels (a thread per output), which would otherwise leave
// most of each block idle. As torch's upsample kernels, which loop over the planes of an output position.
#include <algorithm>
#include <optional>

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

// Calls f(i, plane, coordinates) for each output element i in [0, total) this thread owns (a grid-stride loop).
template <typename F> __device__ __forceinline__ void each_output(const Split& sp, int64_t total, F&& f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t pl, o[3];
    sp.coords(i, pl, o);
    f(i, pl, o);
  }
}

// Note [Planes per thread]: the grid's output positions and runs of planes. Plane q * inner + r of the tensor
// read starts at q * outer_stride + r * inner_stride (Plan's coalesced leading dims; the backward's dense sums
// are inner 1, outer_stride a plane).
struct Positions {
  IntDivider out2, out1;
  uint32_t spatial = 1, planes = 1, run = 1;  // positions per plane, planes, planes per run (blockIdx.y)
  IntDivider inner;
  int64_t inner_stride = 0, outer_stride = 0;
};

// This thread's position and its run of planes: `out` indexes the dense [planes, positions] layout, `in` is the
// plane's offset in the tensor read.
struct PlaneRun {
  int64_t out = 0, in = 0;
  uint32_t left = 0, r = 0;  // planes left in the run; the plane's index within its inner dim
  __device__ void next(const Positions& ps) {
    out += ps.spatial;
    if (++r == ps.inner.divisor) r = 0, in += ps.outer_stride - int64_t(ps.inner.divisor - 1) * ps.inner_stride;
    else in += ps.inner_stride;
  }
};

// Whether this thread has a position (its coordinates in o) and a non-empty run.
__device__ __forceinline__ bool start_run(const Positions& ps, int64_t o[3], PlaneRun& run) {
  const uint32_t s = blockIdx.x * blockDim.x + threadIdx.x, first = blockIdx.y * ps.run;
  if (s >= ps.spatial || first >= ps.planes) return false;
  const uint32_t q = ps.out2.div(s), o0 = ps.out1.div(q);
  o[0] = o0, o[1] = q - o0 * ps.out1.divisor, o[2] = s - q * ps.out2.divisor;
  const uint32_t pq = ps.inner.div(first);
  run.r = first - pq * ps.inner.divisor;
  run.in = int64_t(pq) * ps.outer_stride + int64_t(run.r) * ps.inner_stride;
  run.out = int64_t(first) * ps.spatial + s;
  run.left = min(ps.run, ps.planes - first);
  return true;
}

// A tap's row, checked: a row outside [0, d.in) is reported once and read as no tap.
template <typename A>
__device__ inline int64_t checked_tap(const Dim& d, int k, int64_t o, int64_t t, A& w, const KernelErrorSlot& err) {
  const int64_t r = resample::tap(d, o, t, w);
  if (r == kNoTap || (r >= 0 && r < d.in)) return r;
  report_bad_index(err, r, k, d.in);
  return kNoTap;
}

inline constexpr int kRegisterTaps = 4;

// One dim's taps of one output row in registers (Note [Taps in registers]).
template <typename A> struct RowTaps {
  int32_t off[kRegisterTaps];  // the row's element offset within the plane
  A w[kRegisterTaps];
  uint32_t live = 0;           // bit t: tap t reads a row (kNoTap and rows out of range read none)
  __device__ bool reads(int t) const { return (live >> t) & 1u; }
};

template <typename A>
__device__ __forceinline__ RowTaps<A> row_taps(const Dim& d, int k, int64_t o, const KernelErrorSlot& err) {
  RowTaps<A> r;
#pragma unroll
  for (int t = 0; t < kRegisterTaps; ++t) {
    r.off[t] = 0, r.w[t] = A(0);
    if (t >= d.taps) continue;
    A w;
    const int64_t row = checked_tap(d, k, o, t, w, err);
    if (row == kNoTap) continue;
    r.off[t] = int32_t(row) * int32_t(d.in_stride), r.w[t] = w, r.live |= 1u << t;
  }
  return r;
}

// Whether a plan's taps fit RowTaps: few enough per dim, and every row's offset (summed over dims) below 2^31.
bool fits_registers(const Plan& p) {
  int64_t span = 0;
  for (const Dim& d : p.dim) {
    if (d.taps > kRegisterTaps) return false;
    span += std::max<int64_t>(d.in - 1, 0) * d.in_stride;  // (an empty dim has no rows to read)
  }
  return span <= INT32_MAX;
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads) resample_registers_kernel(T* __restrict__ out, const T* __restrict__ x,
    const __grid_constant__ Plan p, const __grid_constant__ Positions ps, KernelErrorSlot err) {
  int64_t o[3];
  PlaneRun run;
  if (!start_run(ps, o, run)) return;
  const RowTaps<A> r0 = row_taps<A>(p.dim[0], 0, o[0], err), r1 = row_taps<A>(p.dim[1], 1, o[1], err),
                   r2 = row_taps<A>(p.dim[2], 2, o[2], err);
#pragma unroll 2
  for (; run.left > 0; --run.left, run.next(ps)) {
    const T* base = x + run.in;
    A acc0 = A(0);
#pragma unroll
    for (int t0 = 0; t0 < kRegisterTaps; ++t0) {
      if (!r0.reads(t0)) continue;
      A acc1 = A(0);
#pragma unroll
      for (int t1 = 0; t1 < kRegisterTaps; ++t1) {
        if (!r1.reads(t1)) continue;
        const T* row = base + (r0.off[t0] + r1.off[t1]);
        A acc2 = A(0);
#pragma unroll
        for (int t2 = 0; t2 < kRegisterTaps; ++t2)
          if (r2.reads(t2)) acc2 += r2.w[t2] * A(opmath_t<T>(row[r2.off[t2]]));
        acc1 += r1.w[t1] * acc2;
      }
      acc0 += r0.w[t0] * acc1;
    }
    out[run.out] = T(opmath_t<T>(acc0));
  }
}

template <typename T, typename A>
__global__ void resample_kernel(T* out, const T* x, const __grid_constant__ Plan p, const __grid_constant__ Split sp,
                                int64_t total, KernelErrorSlot err) {
  each_output(sp, total, [&](int64_t i, int64_t pl, const int64_t (&o)[3]) {
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
  });
}

// The offset within its plane of the element a gather's output at coordinates o reads, or -1 where a dim has no
// tap there (every dim's tap is still checked).
template <typename Off>
__device__ __forceinline__ Off gather_source(const Plan& p, const int64_t (&o)[3], const KernelErrorSlot& err) {
  Off src = 0;
  bool missing = false;
#pragma unroll
  for (int k = 0; k < resample::kMaxResampled; ++k) {
    int w;
    const int64_t r = checked_tap(p.dim[k], k, o[k], 0, w, err);
    if (r == kNoTap) missing = true;
    else src += Off(r) * Off(p.dim[k].in_stride);
  }
  return missing ? Off(-1) : src;
}

// A gather whose plane's rows lie within 2^31 elements (Note [Taps in registers]), by runs of planes (Note
// [Planes per thread]): the source row's offset is found once per position.
template <typename W>
__global__ void __launch_bounds__(kThreads) gather_planes_kernel(W* __restrict__ out, const W* __restrict__ x,
    const __grid_constant__ Plan p, const __grid_constant__ Positions ps, KernelErrorSlot err) {
  int64_t o[3];
  PlaneRun run;
  if (!start_run(ps, o, run)) return;
  const int32_t src = gather_source<int32_t>(p, o, err);
#pragma unroll 4
  for (; run.left > 0; --run.left, run.next(ps)) out[run.out] = src < 0 ? W{} : x[run.in + src];
}

// The general gather (a plane's rows past 2^31 elements, fewer positions than a warp): a thread per output.
template <typename W>
__global__ void __launch_bounds__(kThreads) gather_kernel(W* out, const W* x, const __grid_constant__ Plan p,
    const __grid_constant__ Split sp, int64_t total, KernelErrorSlot err) {
  each_output(sp, total, [&](int64_t i, int64_t pl, const int64_t (&o)[3]) {
    const int64_t src = gather_source<int64_t>(p, o, err);
    out[i] = src < 0 ? W{} : x[sp.plane_offset(p, pl) + src];
  });
}

// g dense [planes, out...]; gin the dense sums [planes, in...] (A), zero on entry.
template <typename T, typename A>
__global__ void resample_backward_kernel(A* gin, const T* g, const __grid_constant__ Plan p,
                                         const __grid_constant__ Split sp, int64_t total, KernelErrorSlot err) {
  each_output(sp, total, [&](int64_t i, int64_t pl, const int64_t (&o)[3]) {
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
  });
}

// A thread per gradient element: a run of planes would hold its taps' weight products in registers (128 per
// thread, two blocks per SM), which measured slower than finding the taps per element (atomics want threads).
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads) resample_backward_registers_kernel(A* gin, const T* g,
    const __grid_constant__ Plan p, const __grid_constant__ Split sp, int64_t total, KernelErrorSlot err) {
  each_output(sp, total, [&](int64_t i, int64_t pl, const int64_t (&o)[3]) {
    A* base = gin + pl * p.outer_stride;
    const A gv = A(opmath_t<T>(g[i]));
    const RowTaps<A> r0 = row_taps<A>(p.dim[0], 0, o[0], err), r1 = row_taps<A>(p.dim[1], 1, o[1], err),
                     r2 = row_taps<A>(p.dim[2], 2, o[2], err);
#pragma unroll
    for (int t0 = 0; t0 < kRegisterTaps; ++t0) {
      if (!r0.reads(t0)) continue;
#pragma unroll
      for (int t1 = 0; t1 < kRegisterTaps; ++t1) {
        if (!r1.reads(t1)) continue;
        A* row = base + (r0.off[t0] + r1.off[t1]);
        const A w01 = r0.w[t0] * r1.w[t1];
#pragma unroll
        for (int t2 = 0; t2 < kRegisterTaps; ++t2)
          if (r2.reads(t2)) atomicAdd(row + r2.off[t2], (w01 * r2.w[t2]) * gv);
      }
    }
  });
}

template <typename T> using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

int64_t positions_checked(const Plan& p, const char* op) {
  const int64_t spatial = p.dim[0].out * p.dim[1].out * p.dim[2].out;
  VT_CHECK(spatial <= INT32_MAX && p.planes <= INT32_MAX, op, ": at most 2^31 - 1 output elements per plane and "
           "planes, got ", spatial, " and ", p.planes);
  return spatial;
}

Split split_of(const Plan& p, int64_t total, const char* op) {
  const int64_t spatial = positions_checked(p, op);
  Split s;
  s.spatial = IntDivider(uint32_t(spatial)), s.spatial_n = uint32_t(spatial);
  s.out2 = IntDivider(uint32_t(p.dim[2].out)), s.out1 = IntDivider(uint32_t(p.dim[1].out));
  s.inner = IntDivider(uint32_t(p.inner));
  s.index32 = total <= INT32_MAX;
  return s;
}

// Note [Planes per thread]: runs of planes for about two waves of threads, where the plan's taps fit registers
// and a plane has a warp's worth of positions; nullopt where the general kernels run.
struct PlaneGrid {
  Positions ps;
  dim3 grid;
};
std::optional<PlaneGrid> plane_grid(const Plan& p, const char* op) {
  const int64_t spatial = positions_checked(p, op);
  if (!fits_registers(p) || spatial < 32) return std::nullopt;
  const int64_t threads = 2 * int64_t(wave_blocks()) * kThreads;
  int64_t runs = std::clamp<int64_t>((threads + spatial - 1) / spatial, 1, std::min<int64_t>(p.planes, 65535));
  PlaneGrid g;
  g.ps.run = uint32_t((p.planes + runs - 1) / runs);
  runs = (p.planes + g.ps.run - 1) / g.ps.run;
  g.ps.spatial = uint32_t(spatial), g.ps.planes = uint32_t(p.planes);
  g.ps.out2 = IntDivider(uint32_t(p.dim[2].out)), g.ps.out1 = IntDivider(uint32_t(p.dim[1].out));
  g.ps.inner = IntDivider(uint32_t(p.inner));
  g.ps.inner_stride = p.inner_stride, g.ps.outer_stride = p.outer_stride;
  g.grid = dim3(unsigned((spatial + kThreads - 1) / kThreads), unsigned(runs));
  return g;
}

cudaStream_t stream_on(const Tensor& t) { return reinterpret_cast<cudaStream_t>(current_stream(t.device().index)); }

Tensor resample_cuda(const Tensor& input, TensorList indices, TensorList weights, TensorList adjoint_indices,
                     TensorList adjoint_weights) {
  DeviceGuard guard(input.device().index);
  const resample::Checked c = resample::forward_plan(input, indices, weights, adjoint_indices, adjoint_weights);
  Tensor out = empty_tensor(c.result_sizes, input.dtype(), input.device());
  const int64_t n = out.numel();
  if (n == 0) return out;
  const int device = input.device().index;
  const KernelErrorSlot err = kernel_error_slot(device, "_resample", ErrorKind::Index);
  const cudaStream_t stream = stream_on(out);
  const std::optional<PlaneGrid> runs = plane_grid(c.plan, "_resample");
  const Split sp = split_of(c.plan, n, "_resample");
  if (c.plan.weighted) {
    VT_DISPATCH_FLOATING(input.dtype(), "_resample", [&] {
      using A = Acc<scalar_t>;
      scalar_t* o = out.data<scalar_t>();
      const scalar_t* x = c.input.data<scalar_t>();
      if (runs)
        resample_registers_kernel<scalar_t, A><<<runs->grid, kThreads, 0, stream>>>(o, x, c.plan, runs->ps, err);
      else
        resample_kernel<scalar_t, A><<<grid_size(n), kThreads, 0, stream>>>(o, x, c.plan, sp, n, err);
    });
  } else {
    with_word(input.element_size(), [&](auto w) {
      using W = decltype(w);
      W* o = reinterpret_cast<W*>(out.data_ptr());
      const W* x = reinterpret_cast<const W*>(c.input.data_ptr());
      if (runs) gather_planes_kernel<W><<<runs->grid, kThreads, 0, stream>>>(o, x, c.plan, runs->ps, err);
      else gather_kernel<W><<<grid_size(n), kThreads, 0, stream>>>(o, x, c.plan, sp, n, err);
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
    const int device = grad.device().index;
    const KernelErrorSlot err = kernel_error_slot(device, "_resample_backward", ErrorKind::Index);
    const cudaStream_t stream = stream_on(grad);
    const Split sp = split_of(c.plan, n, "_resample_backward");
    const bool registers = fits_registers(c.plan);
    VT_DISPATCH_FLOATING(grad.dtype(), "_resample_backward", [&] {
      using A = Acc<scalar_t>;
      auto* kernel =
          registers ? resample_backward_registers_kernel<scalar_t, A> : resample_backward_kernel<scalar_t, A>;
      kernel<<<grid_size(n), kThreads, 0, stream>>>(sums.data<A>(), c.input.data<scalar_t>(), c.plan, sp, n, err);
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
