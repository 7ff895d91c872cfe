#pragma once
// Multi-tensor launches on CUDA: the `Launch` of ../fused_optim.h (CudaMultiTensor, used by the fused optimizers
// and ../foreach.h) and the row table that other multi-tensor kernels (the foreach norm) share.
//
// One launch covers up to kMaxRows rows (a row is a tensor, or a param with its grad and state): their
// pointers, sizes and per-row scalars travel by value in the kernel parameters (RowChunks, kept under the
// 4 KiB parameter limit), each row is cut into kChunk-element chunks, one block per chunk, and a block finds its
// row by binary search over the rows' first chunk numbers. A new launch starts only when the table is full, so
// an op over ~80 parameters is two or three launches whatever their sizes. Inside a chunk each thread takes
// kILP consecutive elements with vector loads and stores when every pointer of the row is aligned for them,
// else one element at a time; arithmetic is in opmath (float for 16-bit params).
#include "../fused_optim.h"
#include "loops.cuh"

namespace vt::cuda {

inline constexpr int kMultiBlock = 512;
inline constexpr int64_t kChunk = 65536;  // elements per block: big rows become many blocks, small ones one
inline constexpr int kILP = 4;            // elements per thread and vector

template <int D, typename Extra> struct RowChunks {
  static constexpr int kDepth = D;
  // Bytes per row: D pointers, numel, first chunk, the per-row scalars. The rest of the 4 KiB holds the step.
  static constexpr int kMaxRows = int((3584 - 16) / (D * sizeof(void*) + sizeof(int64_t) + sizeof(int) + sizeof(Extra)));
  void* ptr[D][kMaxRows];
  int64_t numel[kMaxRows];
  int first_chunk[kMaxRows];  // chunks of the rows before, in this launch
  Extra extra[kMaxRows];
  int rows;

  struct Chunk {
    int row;
    int64_t begin, n;  // its first element in the row, and its length
  };
  // Chunk b: its row is the last whose first chunk is <= b. An empty row is never picked, since the row after
  // it starts at the same chunk.
  __device__ Chunk chunk(int b) const {
    int lo = 0, hi = rows - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) / 2;
      if (first_chunk[mid] <= b) lo = mid;
      else hi = mid - 1;
    }
    const int64_t begin = int64_t(b - first_chunk[lo]) * kChunk;
    return {lo, begin, numel[lo] - begin < kChunk ? numel[lo] - begin : kChunk};
  }
};

// Fills RowChunks with rows 0, 1, ... of `rows` (empty rows included, with no chunks) and calls
// launch(table, chunks, first_row) each time the table is full and once at the end.
template <typename Chunks, typename Extra, typename F>
void for_each_launch(const optim::Rows& rows, const std::vector<Extra>& per_row, F launch) {
  constexpr int D = Chunks::kDepth;
  VT_INTERNAL_ASSERT(rows.depth == D, "multi-tensor launch: row depth");
  Chunks rc;
  rc.rows = 0;
  int64_t chunks = 0;
  size_t first_row = 0;
  auto flush = [&](size_t next_row) {
    launch(rc, chunks, first_row);
    rc.rows = 0;
    chunks = 0;
    first_row = next_row;
  };
  for (size_t i = 0; i < rows.rows(); ++i) {
    const int64_t numel = rows.at(i, 0).numel();
    const int64_t row_chunks = (numel + kChunk - 1) / kChunk;
    if (rc.rows > 0 && chunks + row_chunks > INT32_MAX) flush(i);  // block numbers stay ints
    for (int d = 0; d < D; ++d) rc.ptr[d][rc.rows] = rows.at(i, d).data_ptr();
    rc.numel[rc.rows] = numel;
    rc.first_chunk[rc.rows] = int(chunks);
    rc.extra[rc.rows] = per_row[i];
    ++rc.rows;
    chunks += row_chunks;
    if (rc.rows == Chunks::kMaxRows) flush(i + 1);
  }
  if (rc.rows > 0) flush(rows.rows());
}

template <typename S, int D, typename F>
__device__ __forceinline__ void update_one(S* const (&ptr)[D], int64_t k, const F& f) {
  using T = opmath_t<S>;
  T r[D];
#pragma unroll
  for (int d = 0; d < D; ++d) r[d] = T(ptr[d][k]);
  f(r);
#pragma unroll
  for (int d = 0; d < D; ++d)
    if (d != 1) ptr[d][k] = S(r[d]);  // list 1, the gradient, is read-only
}

template <typename S, typename Step>
__global__ void __launch_bounds__(kMultiBlock)
    multi_tensor_kernel(RowChunks<Step::kDepth, typename Step::Extra> rc, Step step) {
  constexpr int D = Step::kDepth;
  using T = opmath_t<S>;
  const auto [lo, begin, n] = rc.chunk(int(blockIdx.x));
  S* ptr[D];
  bool aligned = true;
#pragma unroll
  for (int d = 0; d < D; ++d) {
    ptr[d] = static_cast<S*>(rc.ptr[d][lo]) + begin;
    aligned = aligned && reinterpret_cast<uintptr_t>(ptr[d]) % (sizeof(S) * kILP) == 0;
  }
  const auto f = step.elem(rc.extra[lo]);
  int64_t scalar_from = 0;
  if (aligned) {
    using V = Vec<S, kILP>;
    const int64_t nvec = n / kILP;
    for (int64_t v = threadIdx.x; v < nvec; v += blockDim.x) {
      V x[D];
#pragma unroll
      for (int d = 0; d < D; ++d) x[d] = reinterpret_cast<const V*>(ptr[d])[v];
#pragma unroll
      for (int j = 0; j < kILP; ++j) {
        T r[D];
#pragma unroll
        for (int d = 0; d < D; ++d) r[d] = T(x[d].v[j]);
        f(r);
#pragma unroll
        for (int d = 0; d < D; ++d) x[d].v[j] = S(r[d]);
      }
#pragma unroll
      for (int d = 0; d < D; ++d)
        if (d != 1) reinterpret_cast<V*>(ptr[d])[v] = x[d];
    }
    scalar_from = nvec * kILP;
  }
  for (int64_t k = scalar_from + threadIdx.x; k < n; k += blockDim.x) update_one<S, D>(ptr, k, f);
}

struct CudaMultiTensor {
  template <typename S, typename Step>
  static void apply(const optim::Rows& rows, const std::vector<typename Step::Extra>& per_row, const Step& step) {
    using Chunks = RowChunks<Step::kDepth, typename Step::Extra>;
    static_assert(sizeof(Chunks) + sizeof(Step) <= 4096, "kernel parameters exceed 4 KiB");
    const int device = rows.device.index;
    DeviceGuard guard(device);
    auto stream = reinterpret_cast<cudaStream_t>(current_stream(device));
    for_each_launch<Chunks>(rows, per_row, [&](const Chunks& rc, int64_t chunks, size_t) {
      multi_tensor_kernel<S><<<unsigned(chunks), kMultiBlock, 0, stream>>>(rc, step);
      VT_CUDA_CHECK(cudaGetLastError());
    });
  }
};

}  // namespace vt::cuda
