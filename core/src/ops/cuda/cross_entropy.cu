// CUDA cross entropy of class-index targets without class weights or label smoothing (the common case of
// F.cross_entropy), fused: one row kernel computes each row's log-sum-exp and loss and a one-block kernel reduces
// the losses (sum, or mean over the rows not ignored) in a fixed order; the backward is one row kernel,
// scale * (softmax - onehot(target)). The composition of ../nn.cpp (log_softmax, the ignore_index mask, a gather,
// the reductions) took about fourteen launches forward and wrote the whole log-softmax; the other cases still run
// it. The CPU kernels of the same ops: ../cross_entropy_cpu.cpp.
//
// _cross_entropy_rows(input [M, C], target [M] int64, ignore_index, reduction) -> (loss, stats [M, 2], count [])
//   loss: [M] (reduction 0) or [] (1: mean, 2: sum) in the input's dtype; stats (each row's max and the log of
//   its sum of exp(x - max)) and count (the rows not ignored) in the accumulating type, kept for the backward.
//
// Note [Cross entropy keeps the max apart]: a row's loss is (max - x[target]) + log(sum), not lse - x[target]
// with lse = max + log(sum) rounded first: for a confident row (loss ~1e-5, logits ~10) the rounded lse has an
// error of ~1e-6, a tenth of the loss (an ECAPA step's loss differed from torch's by 1.7%). The backward likewise
// takes exp((x - max) - log(sum)), as torch's log-softmax does.
// A target outside [0, C) other than ignore_index is recorded for the next synchronization (Note [Deferred kernel
// errors]) and its row counted as ignored.
#include "../cross_entropy_args.h"
#include "kernel_errors.cuh"
#include "loops.cuh"
#include "row_groups.cuh"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

using namespace rows;

struct Targets {
  const int64_t* t;
  int64_t ignore, classes;
};

// A row's target, or -1 for an ignored row (and for a bad one, reported once by the lane that reads it).
__device__ inline int64_t row_target(const Targets& tg, int64_t row, int lane, const KernelErrorSlot* err) {
  const int64_t t = tg.t[row];
  if (t == tg.ignore) return -1;
  if (t < 0 || t >= tg.classes) {
    if (err && lane == 0) report_bad_index(*err, t, 1, tg.classes);
    return -1;
  }
  return t;
}

// Note [Rows read in vectors]: a group reads its row in 16-byte vectors between the row's first and last 16-byte
// boundaries, element by element outside them (rows of a 50,257-word vocabulary start anywhere). One 2-byte load
// per element kept a bfloat16 row's forward at 1 TB/s (1.12x torch's time at [8192, 50257]).
template <typename T> constexpr int kRowVec = 16 / int(sizeof(T));
template <typename T> __device__ int64_t head_elements(const T* p, int64_t n) {
  const int64_t h = int64_t((16 - reinterpret_cast<uintptr_t>(p) % 16) % 16) / int64_t(sizeof(T));
  return h < n ? h : n;
}
template <typename T, typename F> __device__ void each_in_row(const T* xr, int64_t n, int lane, int width, F f) {
  constexpr int V = kRowVec<T>;
  const int64_t head = head_elements(xr, n), body = (n - head) / V;
  for (int64_t j = lane; j < head; j += width) f(xr[j]);
  const Vec<T, V>* vp = reinterpret_cast<const Vec<T, V>*>(xr + head);
  for (int64_t k = lane; k < body; k += width) {
    const Vec<T, V> v = vp[k];
#pragma unroll
    for (int i = 0; i < V; ++i) f(v.v[i]);
  }
  for (int64_t j = head + body * V + lane; j < n; j += width) f(xr[j]);
}

template <typename T>
__global__ void ce_rows_kernel(const T* x, int64_t row_stride, Targets tg, int64_t rows, T* loss_out,
                               Acc<T>* loss_acc, Acc<T>* stats, bool block, KernelErrorSlot err) {
  using A = Acc<T>;
  RowGroup g = row_group(block);
  if (g.row >= rows) return;  // whole groups leave together
  const T* xr = x + g.row * row_stride;
  MaxSum<A> st{-std::numeric_limits<A>::infinity(), A(0)};
  each_in_row(xr, tg.classes, g.lane, g.width, [&](T v) { st = push(st, A(v)); });
  st = group_reduce(st, [](MaxSum<A> p, MaxSum<A> q) { return merge(p, q); }, g.block);
  if (g.lane != 0) return;
  const A logs = log(st.s);
  const int64_t t = row_target(tg, g.row, 0, &err);
  const A loss = t < 0 ? A(0) : (st.m - A(xr[t])) + logs;  // Note [Cross entropy keeps the max apart]
  stats[2 * g.row] = st.m, stats[2 * g.row + 1] = logs;
  if (loss_out) loss_out[g.row] = T(loss);
  if (loss_acc) loss_acc[g.row] = loss;
}

// One block: the sum of the row losses in float64 and the count of rows not ignored, each thread's rows in
// order, then the threads' partials in a fixed tree: the same bits on every run.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    ce_total_kernel(const Acc<T>* loss, Targets tg, int64_t rows, bool mean, T* out, Acc<T>* count) {
  __shared__ double sum[kThreads], cnt[kThreads];
  double s = 0, c = 0;
  for (int64_t r = threadIdx.x; r < rows; r += kThreads) {
    s += double(loss[r]);
    const int64_t t = tg.t[r];
    c += (t != tg.ignore && t >= 0 && t < tg.classes) ? 1.0 : 0.0;
  }
  sum[threadIdx.x] = s, cnt[threadIdx.x] = c;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) sum[threadIdx.x] += sum[threadIdx.x + w], cnt[threadIdx.x] += cnt[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *out = T(Acc<T>(mean ? sum[0] / cnt[0] : sum[0]));  // a mean over no rows is 0 / 0, as torch's
    *count = Acc<T>(cnt[0]);
  }
}

// d loss / d x[r, j] = scale_r * (exp((x[r, j] - max_r) - log(sum_r)) - [j == target_r]); 0 on ignored rows.
// scale_r is the output's gradient: per row (reduction 0), or the one value, divided by the count for a mean.
template <typename T>
__global__ void ce_backward_kernel(const T* grad, const T* x, int64_t row_stride, Targets tg, const Acc<T>* stats,
                                   const Acc<T>* count, int64_t rows, int reduction, T* gx, bool block) {
  using A = Acc<T>;
  RowGroup g = row_group(block);
  if (g.row >= rows) return;
  const int64_t t = row_target(tg, g.row, g.lane, nullptr);
  T* gr = gx + g.row * tg.classes;
  if (t < 0) {
    for (int64_t j = g.lane; j < tg.classes; j += g.width) gr[j] = T(0);
    return;
  }
  const A scale = reduction == 0 ? A(grad[g.row]) : reduction == 1 ? A(grad[0]) / count[0] : A(grad[0]);
  const T* xr = x + g.row * row_stride;
  const A m = stats[2 * g.row], logs = stats[2 * g.row + 1];
  auto d = [&](T x, int64_t j) { return T(scale * (exp((A(x) - m) - logs) - (j == t ? A(1) : A(0)))); };
  constexpr int V = kRowVec<T>;
  const int64_t n = tg.classes, head = head_elements(xr, n), body = (n - head) / V;
  // Note [Rows read in vectors], where the gradient's row shares the input row's offset from a 16-byte boundary
  const bool vectors = (reinterpret_cast<uintptr_t>(gr) - reinterpret_cast<uintptr_t>(xr)) % 16 == 0;
  const int64_t scalar_end = vectors ? head : n;
  for (int64_t j = g.lane; j < scalar_end; j += g.width) gr[j] = d(xr[j], j);
  if (!vectors) return;
  const Vec<T, V>* xv = reinterpret_cast<const Vec<T, V>*>(xr + head);
  Vec<T, V>* gv = reinterpret_cast<Vec<T, V>*>(gr + head);
  for (int64_t k = g.lane; k < body; k += g.width) {
    const Vec<T, V> x = xv[k];
    Vec<T, V> y;
#pragma unroll
    for (int i = 0; i < V; ++i) y.v[i] = d(x.v[i], head + k * V + i);
    gv[k] = y;
  }
  for (int64_t j = head + body * V + g.lane; j < n; j += g.width) gr[j] = d(xr[j], j);
}

cudaStream_t stream_of(const Tensor& t) { return reinterpret_cast<cudaStream_t>(current_stream(t.device().index)); }

// The input with unit class stride (rows may be strided), the targets as dense int64.
Targets targets_of(const Tensor& target, int64_t ignore_index, int64_t classes) {
  return {target.data<int64_t>(), ignore_index, classes};
}

std::tuple<Tensor, Tensor, Tensor> ce_rows_cuda(const Tensor& input_in, const Tensor& target_in, int64_t ignore_index,
                                                int64_t reduction) {
  xent::check_rows_args(input_in, target_in, reduction);
  DeviceGuard guard(input_in.device().index);
  const Tensor input = xent::class_rows(input_in), target = xent::dense_targets(target_in);
  const int64_t M = input.size(0), C = input.size(1);
  const ScalarType acc = input.dtype() == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
  Tensor loss = empty_tensor(reduction == 0 ? DimVector{M} : DimVector{}, input.dtype(), input.device());
  Tensor stats = empty_tensor(DimVector{M, 2}, acc, input.device());
  Tensor count = empty_tensor(DimVector{}, acc, input.device());
  Tensor rows_acc = reduction == 0 ? Tensor() : empty_tensor(DimVector{M}, acc, input.device());
  const Targets tg = targets_of(target, ignore_index, C);
  const bool block = use_block(C);
  auto stream = stream_of(input);
  const int device = input.device().index;
  VT_DISPATCH_FLOATING(input.dtype(), "cross_entropy", [&] {
    using A = Acc<scalar_t>;
    if (M > 0)
      ce_rows_kernel<scalar_t><<<row_grid(M, block), block ? kBlockRow : kWarp * kRowsPerBlock, 0, stream>>>(
          input.data<scalar_t>(), input.stride(0), tg, M, reduction == 0 ? loss.data<scalar_t>() : nullptr,
          reduction == 0 ? nullptr : rows_acc.data<A>(), stats.data<A>(), block,
          kernel_error_slot(device, "cross_entropy", ErrorKind::Index));
    VT_CUDA_CHECK(cudaGetLastError());
    if (reduction != 0) {
      ce_total_kernel<scalar_t><<<1, kThreads, 0, stream>>>(M > 0 ? rows_acc.data<A>() : nullptr, tg, M,
                                                            reduction == 1, loss.data<scalar_t>(), count.data<A>());
      VT_CUDA_CHECK(cudaGetLastError());
    }
  });
  after_checked_launch(device, stream);
  return {loss, stats, count};
}

Tensor ce_rows_backward_cuda(const Tensor& grad_in, const Tensor& input_in, const Tensor& target_in, const Tensor& stats,
                             const Tensor& count, int64_t ignore_index, int64_t reduction) {
  DeviceGuard guard(input_in.device().index);
  const Tensor input = xent::class_rows(input_in), target = xent::dense_targets(target_in);
  const Tensor grad = grad_in.dtype() == input.dtype() ? ops::contiguous(grad_in) : ops::to_dtype(grad_in, input.dtype());
  const int64_t M = input.size(0), C = input.size(1);
  Tensor gx = empty_tensor(DimVector{M, C}, input.dtype(), input.device());
  if (gx.numel() == 0) return gx;
  const bool block = use_block(C);
  VT_DISPATCH_FLOATING(input.dtype(), "cross_entropy backward", [&] {
    using A = Acc<scalar_t>;
    ce_backward_kernel<scalar_t><<<row_grid(M, block), block ? kBlockRow : kWarp * kRowsPerBlock, 0,
                                   stream_of(input)>>>(
        grad.data<scalar_t>(), input.data<scalar_t>(), input.stride(0), targets_of(target, ignore_index, C),
        stats.data<A>(), count.data<A>(), M, int(reduction), gx.data<scalar_t>(), block);
  });
  VT_CUDA_CHECK(cudaGetLastError());
  return gx;
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, cross_entropy_cuda) {
  m.impl("_cross_entropy_rows", vt::DispatchKey::CUDA, &vt::cuda::ce_rows_cuda);
  m.impl("_cross_entropy_rows_backward", vt::DispatchKey::CUDA, &vt::cuda::ce_rows_backward_cuda);
}
