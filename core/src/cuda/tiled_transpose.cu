// Note [Tiled transpose]
// The elementwise copy walks the destination in order: a transposed source is then read one element per
// 32-byte sector, each sector fetched again by the seven later threads that need its neighbours (a transposed
// 1 GiB float copy took 2.1-2.6x torch's time that way on an H200 with one-wave grids, about torch's time with
// those of Note [Grid caps]; torch's strided loop moves ~1.1 TB/s there against a plain copy's 4.2). Here a
// block moves a 32 x 32 tile (0.37x torch's time): it reads the tile along the source's unit-stride
// dim (coalesced) into shared memory and writes it along the destination's (coalesced). The tile's row pitch is
// 33 elements, so the column-wise reads of shared memory fall in different banks.
//
// Layout, from the copy's iterator (dim 0 innermost for the destination): dim 0 is unit-stride in the
// destination, some dim j > 0 unit-stride in the source; every other dim is a batch of such 2-d transposes,
// addressed by an offset calculator. Elements move as raw bits of their size (one dtype on both sides; a cast
// goes through the elementwise copy), so four kernels cover every dtype.
#include <cuda_runtime.h>

#include <cstdint>

#include "../ops/copy_iterator.h"
#include "../ops/cuda/loops.cuh"
#include "tiled_transpose.h"
#include "vt/cuda/check.h"
#include "vt/cuda/guard.h"
#include "vt/cuda/stream.h"

namespace vt::cuda {
namespace {

constexpr int kTile = 32, kRowsPerPass = kThreads / kTile;  // a block of 32 x 8 threads, four passes per tile

struct TransposePlan {
  int64_t a_size, b_size;          // dim 0 and dim j
  int64_t src_a_stride;            // bytes between source elements along dim 0 (along j: the element size)
  int64_t dst_b_stride;            // bytes between destination elements along dim j (along 0: the element size)
  int64_t tiles_a, tiles_b, tiles;  // tiles along dim 0, along j, and in all (times the batch)
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
    tiled_transpose_kernel(char* dst, const char* src, TransposePlan p, OffsetCalc<2> batch) {
  __shared__ T tile[kTile][kTile + 1];
  const int tx = int(threadIdx.x) % kTile, ty = int(threadIdx.x) / kTile;
  for (int64_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
    const int64_t a0 = (t % p.tiles_a) * kTile, rest = t / p.tiles_a;
    const int64_t b0 = (rest % p.tiles_b) * kTile;
    int64_t base[2];
    batch.get(rest / p.tiles_b, base);
    // read along j (the source's unit stride): thread tx takes b = b0 + tx
#pragma unroll
    for (int i = 0; i < kTile; i += kRowsPerPass) {
      const int64_t a = a0 + ty + i, b = b0 + tx;
      if (a < p.a_size && b < p.b_size)
        tile[ty + i][tx] = *reinterpret_cast<const T*>(src + base[1] + a * p.src_a_stride + b * int64_t(sizeof(T)));
    }
    __syncthreads();
    // write along dim 0 (the destination's unit stride): thread tx takes a = a0 + tx
#pragma unroll
    for (int i = 0; i < kTile; i += kRowsPerPass) {
      const int64_t a = a0 + tx, b = b0 + ty + i;
      if (a < p.a_size && b < p.b_size)
        *reinterpret_cast<T*>(dst + base[0] + a * int64_t(sizeof(T)) + b * p.dst_b_stride) = tile[tx][ty + i];
    }
    __syncthreads();  // the tile is refilled by the next iteration
  }
}

template <typename T> void launch(TensorIterator& it, const TransposePlan& p, const OffsetCalc<2>& batch) {
  const int device = it.device().index;
  DeviceGuard guard(device);
  auto stream = reinterpret_cast<cudaStream_t>(current_stream(device));
  const int grid = int(std::min<int64_t>(p.tiles, wave_blocks()));
  tiled_transpose_kernel<T><<<grid, kThreads, 0, stream>>>(it.operand(0).data_ptr(), it.operand(1).data_ptr(), p, batch);
  VT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

bool try_tiled_transpose(TensorIterator& it) {
  // Narrow tiles would be mostly padding: the elementwise copy handles those.
  const int j = transposed_source_dim(it, kTile / 2);
  if (j < 0) return false;
  const int nd = it.ndim();
  TransposePlan p{};
  p.a_size = it.shape()[0];
  p.b_size = it.shape()[size_t(j)];
  p.src_a_stride = it.stride(1, 0);
  p.dst_b_stride = it.stride(0, j);
  p.tiles_a = (p.a_size + kTile - 1) / kTile;
  p.tiles_b = (p.b_size + kTile - 1) / kTile;
  DimVector batch_sizes, batch_dims;  // inline storage: no allocation per copy
  int64_t batch_count = 1;
  for (int d = 1; d < nd; ++d)
    if (d != j) batch_sizes.push_back(it.shape()[size_t(d)]), batch_dims.push_back(d), batch_count *= it.shape()[size_t(d)];
  p.tiles = p.tiles_a * p.tiles_b * batch_count;
  OffsetCalc<2> batch(batch_sizes, [&](int op, int k) { return it.stride(op, int(batch_dims[size_t(k)])); }, batch_count);
  switch (it.operand(0).element_size()) {
    case 1: launch<uint8_t>(it, p, batch); break;
    case 2: launch<uint16_t>(it, p, batch); break;
    case 4: launch<uint32_t>(it, p, batch); break;
    case 8: launch<uint64_t>(it, p, batch); break;
    default: return false;
  }
  return true;
}

}  // namespace vt::cuda
