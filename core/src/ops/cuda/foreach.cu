// The CUDA kernels of the foreach ops (../foreach.h). _foreach_mul_ is the multi-tensor apply of the fused
// optimizers (multi_tensor.cuh): one launch per row table, so one for a list of up to ~170 tensors. The norm
// is two launches per row table over the same table in the kernel parameters:
//  - partials: one block per kChunk-element chunk of a row (as multi_tensor_kernel). Thread t folds the groups
//    of kILP elements t, t + blockDim, ... into kILP accumulators, with vector loads when the row is aligned
//    for them and element loads otherwise (the same elements in the same order, so alignment does not change
//    the bits); the block combines its threads through a fixed shuffle tree and writes one partial.
//  - finish: one warp per row combines the row's partials (lane l takes l, l + 32, ...) through the same tree
//    and writes the root, in the row's dtype, into the output buffer.
// Partials are opmath values in a caching-allocator buffer on the stream; nothing is accumulated atomically
// (Note [Foreach norm order]).
#include "../foreach.h"
#include "multi_tensor.cuh"

namespace vt::cuda {
namespace {

using NormTable = RowChunks<1, optim::NoExtra>;

template <typename T, typename Op> __device__ __forceinline__ T warp_fold(T v, const Op& op) {
#pragma unroll
  for (int s = 16; s > 0; s >>= 1) v = op.combine(v, __shfl_down_sync(0xffffffffu, v, s));
  return v;  // lane 0's
}

template <typename T, typename Op> __device__ T block_fold(T v, const Op& op) {
  __shared__ T per_warp[kMultiBlock / 32];
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  v = warp_fold(v, op);
  if (lane == 0) per_warp[warp] = v;
  __syncthreads();
  if (warp == 0) v = warp_fold(lane < int(blockDim.x) / 32 ? per_warp[lane] : op.init(), op);
  return v;  // thread 0's
}

template <bool Aligned, typename S, typename T, typename Op>
__device__ __forceinline__ void fold_groups(const S* p, int64_t groups, T (&a)[kILP], const Op& op) {
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    S x[kILP];
    if constexpr (Aligned) {
      const Vec<S, kILP> v = reinterpret_cast<const Vec<S, kILP>*>(p)[g];
#pragma unroll
      for (int j = 0; j < kILP; ++j) x[j] = v.v[j];
    } else {
#pragma unroll
      for (int j = 0; j < kILP; ++j) x[j] = p[g * kILP + j];
    }
#pragma unroll
    for (int j = 0; j < kILP; ++j) a[j] = op.combine(a[j], op.elem(T(x[j])));
  }
}

template <typename S, typename Op>
__global__ void __launch_bounds__(kMultiBlock) norm_partials_kernel(NormTable rc, Op op, opmath_t<S>* partial) {
  using T = opmath_t<S>;
  const auto [row, begin, n] = rc.chunk(int(blockIdx.x));
  const S* p = static_cast<const S*>(rc.ptr[0][row]) + begin;
  T a[kILP];
#pragma unroll
  for (int j = 0; j < kILP; ++j) a[j] = op.init();
  const int64_t groups = n / kILP;
  if (reinterpret_cast<uintptr_t>(p) % (sizeof(S) * kILP) == 0) fold_groups<true>(p, groups, a, op);
  else fold_groups<false>(p, groups, a, op);
  if (int64_t(threadIdx.x) < n - groups * kILP) a[0] = op.combine(a[0], op.elem(T(p[groups * kILP + threadIdx.x])));
#pragma unroll
  for (int j = 1; j < kILP; ++j) a[0] = op.combine(a[0], a[j]);
  const T acc = block_fold(a[0], op);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <typename S, typename Op>
__global__ void norm_finish_kernel(NormTable rc, Op op, const opmath_t<S>* partial, S* out) {
  using T = opmath_t<S>;
  const int row = int((int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32), lane = int(threadIdx.x) % 32;
  if (row >= rc.rows) return;  // whole warps: blockDim is a multiple of 32
  const int64_t n = rc.numel[row];
  if (n == 1) {
    if (lane == 0) out[row] = S(op.single(T(*static_cast<const S*>(rc.ptr[0][row]))));
    return;
  }
  const int first = rc.first_chunk[row], count = int((n + kChunk - 1) / kChunk);
  T acc = op.init();
  for (int c = lane; c < count; c += 32) acc = op.combine(acc, partial[first + c]);
  acc = warp_fold(acc, op);
  if (lane == 0) out[row] = S(op.finish(acc));
}

struct CudaForeach : CudaMultiTensor {
  static constexpr bool kHost = false;

  template <typename S, typename Op> static void norm(const optim::Rows& rows, const Op& op, const Tensor& out) {
    using T = opmath_t<S>;
    static_assert(sizeof(NormTable) + sizeof(Op) + 2 * sizeof(void*) <= 4096, "kernel parameters exceed 4 KiB");
    const int device = rows.device.index;
    DeviceGuard guard(device);
    auto stream = reinterpret_cast<cudaStream_t>(current_stream(device));
    int64_t total = 0;
    for (size_t i = 0; i < rows.rows(); ++i) total += (rows.at(i, 0).numel() + kChunk - 1) / kChunk;
    // Allocated and freed on this stream, so the allocator reuses it only after the kernels.
    Tensor partials = empty_tensor(DimVector{total}, scalar_type_of<T>, rows.device);
    T* part = partials.data<T>();
    S* o = out.data<S>();
    const foreach::NormOp<T> any{op.k(), op.p};  // the finish kernel reads the kind at run time
    constexpr int kFinishBlock = 256;                 // eight rows, a warp each
    auto launch = [&](const NormTable& rc, int64_t chunks, size_t first_row) {
      if (chunks > 0) {
        norm_partials_kernel<S><<<unsigned(chunks), kMultiBlock, 0, stream>>>(rc, op, part);
        VT_CUDA_CHECK(cudaGetLastError());
      }
      const unsigned blocks = unsigned((int64_t(rc.rows) * 32 + kFinishBlock - 1) / kFinishBlock);
      norm_finish_kernel<S><<<blocks, kFinishBlock, 0, stream>>>(rc, any, part, o + first_row);
      VT_CUDA_CHECK(cudaGetLastError());
      part += chunks;
    };
    for_each_launch<NormTable>(rows, std::vector<optim::NoExtra>(rows.rows()), launch);
  }
};

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, foreach_cuda) { vt::foreach::register_foreach<vt::cuda::CudaForeach>(m, vt::DispatchKey::CUDA); }
