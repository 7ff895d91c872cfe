#pragma once
// Row groups of the CUDA row kernels (nn_native.cu's softmax and norms, cross_entropy.cu): a row of up to 1024
// entries is one warp's (8 rows per block, no shared memory, no block barrier), a longer row one 256-thread
// block's; the group's threads walk the row with a stride of the group size and combine what they hold with
// warp shuffles (and, for a block, shared memory in a fixed order). Online softmax states (max, sum of exp) merge
// the same way.
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "vt/core/dtype.h"

namespace vt::cuda::rows {

constexpr int kWarp = 32;
constexpr int kBlockRow = 256;  // threads of a block-per-row group
constexpr int kRowsPerBlock = 8;  // warps (rows) of a warp-per-row block

template <typename T> using Acc = opmath_t<T>;  // what a row kernel computes in

template <typename A> __device__ A shfl_xor(A v, int off) { return __shfl_xor_sync(0xffffffffu, v, off); }
template <typename A> struct MaxSum {
  A m, s;
};
template <typename A> __device__ MaxSum<A> shfl_xor(MaxSum<A> v, int off) {
  return {__shfl_xor_sync(0xffffffffu, v.m, off), __shfl_xor_sync(0xffffffffu, v.s, off)};
}
template <typename A> struct A2 {
  A a, b;
};
template <typename A> __device__ A2<A> shfl_xor(A2<A> v, int off) {
  return {__shfl_xor_sync(0xffffffffu, v.a, off), __shfl_xor_sync(0xffffffffu, v.b, off)};
}

// Sum / (max, sum-of-exp) across a group: the warp, or a whole block of kBlockRow threads. Every thread of the
// group gets the result; the block combine reads the warps' values in a fixed order (deterministic).
template <typename V, typename Op> __device__ V group_reduce(V v, Op op, bool block) {
#pragma unroll
  for (int off = kWarp / 2; off > 0; off /= 2) v = op(v, shfl_xor(v, off));
  if (!block) return v;
  __shared__ V partial[kBlockRow / kWarp];
  __syncthreads();  // a previous call's readers are done
  if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = v;
  __syncthreads();
  V r = partial[0];
  for (int w = 1; w < kBlockRow / kWarp; ++w) r = op(r, partial[w]);
  return r;
}

// Merging two running softmax states; an empty state (s == 0) contributes nothing, a NaN one (a row of -inf)
// stays NaN, as torch's softmax of such a row.
template <typename A> __device__ MaxSum<A> merge(MaxSum<A> x, MaxSum<A> y) {
  A m = x.m > y.m ? x.m : y.m;
  A s = (x.s == A(0) ? A(0) : x.s * exp(x.m - m)) + (y.s == A(0) ? A(0) : y.s * exp(y.m - m));
  return {m, s};
}
template <typename A> __device__ MaxSum<A> push(MaxSum<A> st, A v) {
  if (v == -std::numeric_limits<A>::infinity()) return st;  // weight 0; a row of only -inf keeps s = 0 (NaN out)
  if (v > st.m) return {v, st.s * exp(st.m - v) + exp(v - v)};  // exp(v - v): NaN for v = +inf, as torch's
  return {st.m, st.s + exp(v - st.m)};
}

// The group of threads that owns one row: (row, lane, width) for warp-per-row or block-per-row launches.
struct RowGroup {
  int64_t row;
  int lane, width;
  bool block;
};
__device__ inline RowGroup row_group(bool block) {
  if (block) return {int64_t(blockIdx.x), int(threadIdx.x), kBlockRow, true};
  return {int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp, int(threadIdx.x % kWarp), kWarp, false};
}
inline bool use_block(int64_t n) { return n > 1024; }
inline dim3 row_grid(int64_t rows, bool block) {
  return dim3(unsigned(block ? rows : (rows + kRowsPerBlock - 1) / kRowsPerBlock));
}

}  // namespace vt::cuda::rows
