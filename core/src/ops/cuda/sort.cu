// CUDA kernel of vt::sort: a segmented radix sort (cub) of (key, position) pairs, one segment per row of the
// row view (../sort_rows.h). Radix sorts are stable in both directions, so equal keys keep their order.
//
// Keys are converted so that the radix order is torch's order: floating types become float32 (float16 and
// bfloat16 widen exactly) or float64, with every NaN made the positive quiet NaN (above +inf in radix order,
// as torch puts NaN last) and -0.0 turned into +0.0 (torch compares them equal, radix order would not);
// integers and bool become int64. Values are then read from the original row view at the sorted positions.
//
// Note [Top-k by radix select]
// topk selects before it sorts. A block per row finds the k-th key by radix select: the key's bits as an unsigned
// integer in torch's order (ordered_bits: NaN above +inf, -0.0 equal to +0.0; inverted for the k smallest), one
// byte per pass from the top, a 256-bin histogram of that byte over the keys that share the bytes chosen so far
// (its adds aggregated per warp: the top byte of normally distributed floats falls in a handful of bins). It then
// compacts, in position order, every key above the k-th and the first of the keys equal to it, as many as the rank
// left over, and orders those k: up to kSortInBlock in its shared memory (each key's place is the number of keys
// above it plus its ties before it), more by the segmented radix sort (stable). Either way the result is exactly
// the stable sort's first k, ties in position order, as the CPU's partial sort gives them. The row is read in
// place (float32, float64 and int64; other dtypes widened first), kSelectItems keys per thread in flight, once per
// byte of the key and once more to compact; chunks holding nothing to take skip the compaction's block scans. One
// block per row leaves most of the GPU idle for a few very long rows (a multi-block select would serve them).
#include <cub/device/device_segmented_radix_sort.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <cmath>

#include "../sort_rows.h"
#include "loops.cuh"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

struct RowStart {
  int64_t n;
  __host__ __device__ int64_t operator()(int64_t row) const { return row * n; }
};

__global__ void positions_kernel(int64_t* out, int64_t total, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = i % n;
}

// values[i] = keys[row(i) * n_in + pos[i]], rows of n_out values
template <typename T>
__global__ void take_rows_kernel(T* values, const T* keys, const int64_t* pos, int64_t total, int64_t n_out,
                                 int64_t n_in) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    values[i] = keys[(i / n_out) * n_in + pos[i]];
}

// A key's bits as an unsigned integer in torch's order: NaN (any payload) above +inf, -0.0 equal to +0.0.
__device__ inline uint32_t ordered_bits(float v) {
  const uint32_t b = v != v ? 0x7fc00000u : __float_as_uint(v + 0.0f);  // -0.0 + 0.0 = +0.0
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ inline unsigned long long ordered_bits(double v) {
  const auto b = static_cast<unsigned long long>(v != v ? 0x7ff8000000000000ll : __double_as_longlong(v + 0.0));
  return (b >> 63) ? ~b : (b | (1ull << 63));
}
__device__ inline unsigned long long ordered_bits(int64_t v) {
  return static_cast<unsigned long long>(v) ^ (1ull << 63);
}
// The key that ordered_bits(v) encodes, for the sort of the selected keys (radix order = torch's order).
__device__ inline float canonical(float v) { return v != v ? __int_as_float(0x7fc00000) : v + 0.0f; }
__device__ inline double canonical(double v) { return v != v ? __longlong_as_double(0x7ff8000000000000ll) : v + 0.0; }
__device__ inline int64_t canonical(int64_t v) { return v; }

// Exclusive prefix sum of one int per thread over the block, and the block's total (blockDim.x a multiple of 32;
// warp_sums: 32 ints of shared memory). Ends with a barrier, so warp_sums may be reused at once.
__device__ int block_exclusive_sum(int v, int& total, int* warp_sums) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(~0u, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = lane < warps ? warp_sums[lane] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(~0u, w, o);
      if (lane >= o) w += y;
    }
    warp_sums[lane] = w;
  }
  __syncthreads();
  total = warp_sums[warps - 1];
  const int before = (warp > 0 ? warp_sums[warp - 1] : 0) + x - v;
  __syncthreads();
  return before;
}

constexpr int kSelectThreads = 512;  // at most; short rows get fewer (select_threads)
constexpr int kSortInBlock = 1024;   // k up to this is ordered in the select kernel's shared memory
constexpr int kSelectItems = 8;      // keys per thread per step of a pass

// Threads for a row of n: kSelectItems keys each per step, in whole warps (a row of 128 gets one warp).
int select_threads(int64_t n) {
  const int64_t threads = (n + kSelectItems - 1) / kSelectItems;
  return int(std::min<int64_t>(kSelectThreads, std::max<int64_t>(32, (threads + 31) / 32 * 32)));
}

// Note [Top-k by radix select]: block b selects row b's k keys. k <= kSortInBlock: they are ordered in shared
// memory (a rank per key: the keys above it and its ties before it) and their positions written to
// indices [rows, k]; larger k: the canonical keys and positions go to sel_keys / sel_pos [rows, k] for the
// segmented sort.
template <typename K>
__global__ void __launch_bounds__(kSelectThreads) select_kernel(const K* keys, int64_t n, int k, bool largest,
                                                                int64_t* indices, K* sel_keys, int64_t* sel_pos) {
  using U = decltype(ordered_bits(K()));
  __shared__ int hist[256];
  __shared__ int warp_sums[32];
  __shared__ U chosen;
  __shared__ int chosen_rank;
  __shared__ U kept_bits[kSortInBlock];
  __shared__ int kept_pos[kSortInBlock];
  const K* row = keys + int64_t(blockIdx.x) * n;
  auto bits = [&](int64_t i) { const U u = ordered_bits(row[i]); return largest ? u : U(~u); };
  U prefix = 0, mask = 0;
  int rank = k;  // the wanted key's rank (1 = the largest) among the keys matching prefix under mask
  for (int shift = int(sizeof(U)) * 8 - 8; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0;
    __syncthreads();
    // kSelectItems loads in flight per thread (one at a time, each pass waited on its latency). Keys crowd into a
    // few bins (a float's sign and exponent are its top byte): lanes with one digit add once.
    for (int64_t base = 0; base < n; base += int64_t(blockDim.x) * kSelectItems) {
      U u[kSelectItems];
#pragma unroll
      for (int j = 0; j < kSelectItems; ++j) {
        const int64_t i = base + int64_t(j) * blockDim.x + threadIdx.x;
        u[j] = i < n ? bits(i) : U(0);
      }
#pragma unroll
      for (int j = 0; j < kSelectItems; ++j) {
        const int64_t i = base + int64_t(j) * blockDim.x + threadIdx.x;
        const int digit = i < n && (u[j] & mask) == prefix ? int(u[j] >> shift) & 0xff : -1;
        const unsigned peers = __match_any_sync(~0u, digit);
        if (digit >= 0 && (threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&hist[digit], __popc(peers));
      }
    }
    __syncthreads();
    if (threadIdx.x < 32) {  // lane l counts digits 255 - 8l down to 248 - 8l; the lane holding the rank picks
      const int lane = threadIdx.x;
      int chunk = 0;
      for (int j = 0; j < 8; ++j) chunk += hist[255 - 8 * lane - j];
      int upto = chunk;
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(~0u, upto, o);
        if (lane >= o) upto += y;
      }
      int above = upto - chunk;
      if (above < rank && rank <= upto) {
        int d = 255 - 8 * lane;
        for (; above + hist[d] < rank; --d) above += hist[d];
        chosen = prefix | (U(d) << shift);
        chosen_rank = rank - above;
      }
    }
    __syncthreads();
    prefix = chosen, rank = chosen_rank, mask |= U(0xff) << shift;
  }
  // prefix is now the k-th key; take every key above it and the first `rank` keys equal to it, in position order.
  const bool in_block = k <= kSortInBlock;
  int taken = 0, ties = 0;  // over the chunks before this one
  for (int64_t base = 0; base < n && taken < k; base += int64_t(blockDim.x) * kSelectItems) {
    const int64_t first = base + int64_t(threadIdx.x) * kSelectItems;  // this thread's run of positions
    U u[kSelectItems];
    int my_ties = 0, my_above = 0;
#pragma unroll
    for (int j = 0; j < kSelectItems; ++j) {
      u[j] = first + j < n ? bits(first + j) : U(0);
      my_ties += first + j < n && u[j] == prefix;
      my_above += first + j < n && u[j] > prefix;
    }
    if (!__syncthreads_or(my_ties | my_above)) continue;
    int tie_total, take_total;
    const int ties_before = ties + block_exclusive_sum(my_ties, tie_total, warp_sums);
    int my_take = my_above + max(0, min(my_ties, rank - ties_before));  // ties are taken while their rank allows
    int slot = taken + block_exclusive_sum(my_take, take_total, warp_sums);
    for (int j = 0, tie_rank = ties_before; j < kSelectItems && my_take > 0; ++j) {
      if (first + j >= n || u[j] < prefix || (u[j] == prefix && tie_rank++ >= rank)) continue;
      if (in_block) {
        kept_bits[slot] = u[j], kept_pos[slot] = int(first + j);
      } else {
        sel_keys[int64_t(blockIdx.x) * k + slot] = canonical(row[first + j]);
        sel_pos[int64_t(blockIdx.x) * k + slot] = first + j;
      }
      ++slot, --my_take;
    }
    taken += take_total, ties += tie_total;
  }
  if (!in_block) return;
  __syncthreads();
  for (int j = threadIdx.x; j < k; j += blockDim.x) {  // kept_pos ascends, so a tie before j has a smaller slot
    const U u = kept_bits[j];
    int before = 0;
    for (int m = 0; m < k; ++m) before += kept_bits[m] > u || (kept_bits[m] == u && m < j);
    indices[int64_t(blockIdx.x) * k + before] = kept_pos[j];
  }
}

Tensor radix_keys(const Tensor& keys) {
  ScalarType t = keys.dtype();
  if (!is_floating(t)) return ops::to_dtype(keys, ScalarType::Int64);
  Tensor k = ops::to_dtype(keys, t == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32);
  Tensor nan = scalar_to_tensor(Scalar(std::nan("")), ScalarType::Float64);
  k = ops::where(ops::unary("vt::isnan", k), nan, k);
  return ops::contiguous(ops::add(k, scalar_to_tensor(Scalar(0.0), ScalarType::Float64)));  // -0.0 + 0.0 = +0.0
}

template <typename K>
void segmented_sort(const Tensor& keys, const Tensor& pos_in, const Tensor& pos_out, int64_t rows, int64_t n,
                    bool descending, cudaStream_t stream) {
  const int64_t total = rows * n;
  Tensor keys_out = empty_tensor(DimVector{total}, keys.dtype(), keys.device());
  auto starts = thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0), RowStart{n});
  auto run = [&](void* temp, size_t& bytes) {
    const K* ki = keys.data<K>();
    K* ko = keys_out.data<K>();
    const int64_t* vi = pos_in.data<int64_t>();
    int64_t* vo = pos_out.data<int64_t>();
    if (descending)
      return cub::DeviceSegmentedRadixSort::SortPairsDescending(temp, bytes, ki, ko, vi, vo, int(total), int(rows),
                                                                starts, starts + 1, 0, int(sizeof(K) * 8), stream);
    return cub::DeviceSegmentedRadixSort::SortPairs(temp, bytes, ki, ko, vi, vo, int(total), int(rows), starts,
                                                    starts + 1, 0, int(sizeof(K) * 8), stream);
  };
  size_t bytes = 0;
  VT_CUDA_CHECK(run(nullptr, bytes));
  Tensor temp = empty_tensor(DimVector{int64_t(std::max<size_t>(bytes, 1))}, ScalarType::UInt8, keys.device());
  VT_CUDA_CHECK(run(temp.data_ptr(), bytes));
}

std::tuple<Tensor, Tensor> sort_cuda(const Tensor& self, int64_t dim, bool descending, bool stable) {
  (void)stable;  // always stable
  sort_rows::Rows r = sort_rows::rows_of(self, dim);
  Tensor values = empty_tensor(r.keys.sizes(), self.dtype(), self.device());
  Tensor indices = empty_tensor(r.keys.sizes(), ScalarType::Int64, self.device());
  const int64_t total = r.rows * r.n;
  if (total > 0) {
    VT_CHECK(total <= INT32_MAX, "sort: tensors of more than 2^31 - 1 elements are not supported on CUDA, got ", total);
    DeviceGuard guard(self.device().index);
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(current_stream(self.device().index));
    Tensor keys = radix_keys(r.keys);
    Tensor pos_in = empty_tensor(DimVector{total}, ScalarType::Int64, self.device());
    positions_kernel<<<grid_size(total), kThreads, 0, stream>>>(pos_in.data<int64_t>(), total, r.n);
    VT_CUDA_CHECK(cudaGetLastError());
    switch (keys.dtype()) {
      case ScalarType::Float32: segmented_sort<float>(keys, pos_in, indices, r.rows, r.n, descending, stream); break;
      case ScalarType::Float64: segmented_sort<double>(keys, pos_in, indices, r.rows, r.n, descending, stream); break;
      default: segmented_sort<int64_t>(keys, pos_in, indices, r.rows, r.n, descending, stream); break;
    }
    VT_DISPATCH_ALL(self.dtype(), "sort", [&] {
      take_rows_kernel<scalar_t><<<grid_size(total), kThreads, 0, stream>>>(
          values.data<scalar_t>(), r.keys.data<scalar_t>(), indices.data<int64_t>(), total, r.n, r.n);
    });
    VT_CUDA_CHECK(cudaGetLastError());
  }
  return {sort_rows::restore(r, values), sort_rows::restore(r, indices)};
}

template <typename K>
void select_rows(const Tensor& keys, int64_t rows, int64_t n, int64_t k, bool largest, const Tensor& indices,
                 cudaStream_t stream) {
  const unsigned grid = unsigned(rows), block = unsigned(select_threads(n));
  if (k <= kSortInBlock) {
    select_kernel<K><<<grid, block, 0, stream>>>(keys.data<K>(), n, int(k), largest, indices.data<int64_t>(), nullptr,
                                                 nullptr);
    VT_CUDA_CHECK(cudaGetLastError());
    return;
  }
  Tensor sel_keys = empty_tensor(DimVector{rows * k}, keys.dtype(), keys.device());
  Tensor sel_pos = empty_tensor(DimVector{rows * k}, ScalarType::Int64, keys.device());
  select_kernel<K><<<grid, block, 0, stream>>>(keys.data<K>(), n, int(k), largest, nullptr, sel_keys.data<K>(),
                                               sel_pos.data<int64_t>());
  VT_CUDA_CHECK(cudaGetLastError());
  segmented_sort<K>(sel_keys, sel_pos, indices, rows, k, largest, stream);
}

// Note [Top-k by radix select]. A 0-dim self is the sort's one key.
std::tuple<Tensor, Tensor> topk_cuda(const Tensor& self, int64_t k, int64_t dim, bool largest, bool sorted) {
  (void)sorted;  // the k come sorted either way
  const int64_t n = self.dim() == 0 ? 1 : self.size(wrap_dim(dim, self.dim()));
  VT_CHECK(k >= 0 && k <= n, "selected index k out of range");
  if (self.dim() == 0) return sort_cuda(self, dim, largest, true);
  sort_rows::Rows r = sort_rows::rows_of(self, dim);
  DimVector shape = r.shape_last;
  shape.back() = k;
  Tensor values = empty_tensor(shape, self.dtype(), self.device());
  Tensor indices = empty_tensor(shape, ScalarType::Int64, self.device());
  const int64_t total = r.rows * k;
  if (total > 0) {
    VT_CHECK(r.rows * r.n <= INT32_MAX, "topk: tensors of more than 2^31 - 1 elements are not supported on CUDA, got ",
             r.rows * r.n);
    DeviceGuard guard(self.device().index);
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(current_stream(self.device().index));
    const ScalarType t = r.keys.dtype();  // read as float, double or int64 (ordered_bits orders NaN and -0.0)
    const ScalarType as = !is_floating(t) ? ScalarType::Int64 : t == ScalarType::Float64 ? t : ScalarType::Float32;
    const Tensor keys = t == as ? r.keys : ops::to_dtype(r.keys, as);
    switch (as) {
      case ScalarType::Float32: select_rows<float>(keys, r.rows, r.n, k, largest, indices, stream); break;
      case ScalarType::Float64: select_rows<double>(keys, r.rows, r.n, k, largest, indices, stream); break;
      default: select_rows<int64_t>(keys, r.rows, r.n, k, largest, indices, stream); break;
    }
    VT_DISPATCH_ALL(self.dtype(), "topk", [&] {
      take_rows_kernel<scalar_t><<<grid_size(total), kThreads, 0, stream>>>(
          values.data<scalar_t>(), r.keys.data<scalar_t>(), indices.data<int64_t>(), total, k, r.n);
    });
    VT_CUDA_CHECK(cudaGetLastError());
  }
  return {sort_rows::restore(r, values), sort_rows::restore(r, indices)};
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, sort_cuda) {
  m.impl("sort", vt::DispatchKey::CUDA, &vt::cuda::sort_cuda);
  m.impl("topk", vt::DispatchKey::CUDA, &vt::cuda::topk_cuda);
}
