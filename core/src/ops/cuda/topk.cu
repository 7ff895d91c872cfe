// CUDA kernel of vt::topk: each row's k-th key found by radix select, the k keys taken in position order, then
// ordered (Note [Top-k by radix select]); the values are gathered at their positions like the sort's (sort.cu).
//
// Note [Top-k by radix select]
// topk selects before it sorts. The k-th key is found by radix select: the key's bits as an unsigned integer in
// torch's order (ordered_bits: NaN above +inf, -0.0 equal to +0.0; inverted for the k smallest), one byte per pass
// from the top, a 256-bin histogram of that byte over the keys that share the bytes chosen so far (its adds
// aggregated per warp: the top byte of normally distributed floats falls in a handful of bins). Then every key
// above the k-th and the first of the keys equal to it, as many as the rank left over, are compacted in position
// order, and those k are ordered: up to kSortInBlock in shared memory (each key's place is the number of keys above
// it plus its ties before it), more by the segmented radix sort (stable). Either way the result is exactly the
// stable sort's first k, ties in position order, as the CPU's partial sort gives them. The row is read in place
// (float32, float64 and int64; other dtypes widened first), kSelectItems keys per thread in flight, once per byte
// of the key and once more to compact; chunks holding nothing to take skip the compaction's block scans. Many rows
// get a block each; a few long rows are split over several blocks each (Note [Multi-block select]).
//
// Note [Multi-block select]
// A block per row leaves most of the GPU idle when there are fewer rows than a wave holds (4 rows of 2^20 keys
// took 1.73 ms on an H100, 12.6x torch's time). So a long row is cut into slices of about kSliceKeys, a block
// each, and every pass is one launch: each block adds its slice's byte histogram into the row's global one, and
// the block that arrives last (a counter per row, after a fence) reads the sums back - zeroing them for the next
// pass -, picks the byte and writes the row's select state for the next launch. No block ever waits for another,
// so nothing depends on the blocks being co-resident. A count launch then gives each slice's keys above the k-th
// and its ties, and a take launch compacts every slice at once: a slice's first slot is the keys above the k-th in
// the slices before it plus their ties, capped at the rank; its first tie rank is those slices' ties.
#include <algorithm>

#include "../sort_rows.h"
#include "loops.cuh"
#include "sort_kernels.h"
#include "vt/core/dispatcher.h"
#include "vt/core/ops.h"

namespace vt::cuda {
namespace {

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

template <typename K>
using Bits = decltype(ordered_bits(K()));

// A row's keys as ordered bits, inverted for the k smallest: the select always looks for the largest.
template <typename K>
struct RowBits {
  const K* row;
  bool largest;
  __device__ Bits<K> operator()(int64_t i) const {
    const Bits<K> u = ordered_bits(row[i]);
    return largest ? u : Bits<K>(~u);
  }
};

template <typename U>
struct SelectState {
  U prefix, mask;  // the bytes of the k-th key chosen so far, and which bytes those are
  int rank;        // the k-th key's rank (1: the largest) among the keys matching prefix under mask
};

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
constexpr int kSortInBlock = 1024;   // k up to this is ordered in shared memory
constexpr int kSelectItems = 8;      // keys per thread per step of a pass
constexpr int64_t kSliceKeys = int64_t(kSelectThreads) * kSelectItems * 2;  // Note [Multi-block select]

// Threads for a row of n: kSelectItems keys each per step, in whole warps (a row of 128 gets one warp).
int select_threads(int64_t n) {
  const int64_t threads = (n + kSelectItems - 1) / kSelectItems;
  return int(std::min<int64_t>(kSelectThreads, std::max<int64_t>(32, (threads + 31) / 32 * 32)));
}

// Adds to hist (256 shared bins) byte `shift` of every key of [begin, end) whose bits match s.prefix under s.mask.
// kSelectItems loads in flight per thread (one at a time, each pass waited on its latency). Keys crowd into a few
// bins (a float's sign and exponent are its top byte): lanes with one digit add once.
template <typename K>
__device__ void add_byte_histogram(const RowBits<K>& bits, int64_t begin, int64_t end, const SelectState<Bits<K>>& s,
                                   int shift, int* hist) {
  using U = Bits<K>;
  for (int64_t base = begin; base < end; base += int64_t(blockDim.x) * kSelectItems) {
    U u[kSelectItems];
#pragma unroll
    for (int j = 0; j < kSelectItems; ++j) {
      const int64_t i = base + int64_t(j) * blockDim.x + threadIdx.x;
      u[j] = i < end ? bits(i) : U(0);
    }
#pragma unroll
    for (int j = 0; j < kSelectItems; ++j) {
      const int64_t i = base + int64_t(j) * blockDim.x + threadIdx.x;
      const int digit = i < end && (u[j] & s.mask) == s.prefix ? int(u[j] >> shift) & 0xff : -1;
      const unsigned peers = __match_any_sync(~0u, digit);
      if (digit >= 0 && (threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&hist[digit], __popc(peers));
    }
  }
}

// Warp 0: narrows s to the byte at `shift` holding the key of rank s.rank, from that byte's 256-bin histogram.
// Lane l counts digits 255 - 8l down to 248 - 8l; the lane holding the rank writes *next.
template <typename U>
__device__ void pick_byte(const int* hist, int shift, const SelectState<U>& s, SelectState<U>* next) {
  const int lane = threadIdx.x;
  int chunk = 0;
  for (int j = 0; j < 8; ++j) chunk += hist[255 - 8 * lane - j];
  int upto = chunk;
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(~0u, upto, o);
    if (lane >= o) upto += y;
  }
  int above = upto - chunk;
  if (above < s.rank && s.rank <= upto) {
    int d = 255 - 8 * lane;
    for (; above + hist[d] < s.rank; --d) above += hist[d];
    *next = SelectState<U>{U(s.prefix | (U(d) << shift)), U(s.mask | (U(0xff) << shift)), s.rank - above};
  }
}

// Emits, in position order from slot `taken`, every key of [begin, end) above the k-th key `kth` and the keys equal
// to it while their rank among the row's ties (`ties` of them before begin) is within `rank`: emit(slot, i, bits).
template <typename K, typename Emit>
__device__ void take_selected(const RowBits<K>& bits, int64_t begin, int64_t end, Bits<K> kth, int rank, int k,
                              int taken, int ties, int* warp_sums, Emit emit) {
  using U = Bits<K>;
  for (int64_t base = begin; base < end && taken < k; base += int64_t(blockDim.x) * kSelectItems) {
    const int64_t first = base + int64_t(threadIdx.x) * kSelectItems;  // this thread's run of positions
    U u[kSelectItems];
    int my_ties = 0, my_above = 0;
#pragma unroll
    for (int j = 0; j < kSelectItems; ++j) {
      u[j] = first + j < end ? bits(first + j) : U(0);
      my_ties += first + j < end && u[j] == kth;
      my_above += first + j < end && u[j] > kth;
    }
    if (!__syncthreads_or(my_ties | my_above)) continue;
    int tie_total, take_total;
    const int ties_before = ties + block_exclusive_sum(my_ties, tie_total, warp_sums);
    int my_take = my_above + max(0, min(my_ties, rank - ties_before));  // ties are taken while their rank allows
    int slot = taken + block_exclusive_sum(my_take, take_total, warp_sums);
    for (int j = 0, tie_rank = ties_before; j < kSelectItems && my_take > 0; ++j) {
      if (first + j >= end || u[j] < kth || (u[j] == kth && tie_rank++ >= rank)) continue;
      emit(slot, first + j, u[j]);
      ++slot, --my_take;
    }
    taken += take_total, ties += tie_total;
  }
}

// Writes the k kept keys' positions to out in the select's order: a key's place is the number of kept keys above
// it plus the ties kept before it (they were kept in position order).
template <typename U>
__device__ void write_in_order(const U* kept_bits, const int* kept_pos, int k, int64_t* out) {
  for (int j = threadIdx.x; j < k; j += blockDim.x) {
    const U u = kept_bits[j];
    int before = 0;
    for (int m = 0; m < k; ++m) before += kept_bits[m] > u || (kept_bits[m] == u && m < j);
    out[before] = kept_pos[j];
  }
}

// Block b selects row b's k keys. k <= kSortInBlock: their positions go to indices [rows, k] in order; larger k:
// their canonical keys and positions go to sel_keys / sel_pos [rows, k], in position order, for the sort.
template <typename K>
__global__ void __launch_bounds__(kSelectThreads) select_kernel(const K* keys, int64_t n, int k, bool largest,
                                                                int64_t* indices, K* sel_keys, int64_t* sel_pos) {
  using U = Bits<K>;
  __shared__ int hist[256];
  __shared__ int warp_sums[32];
  __shared__ SelectState<U> next;
  __shared__ U kept_bits[kSortInBlock];
  __shared__ int kept_pos[kSortInBlock];
  const K* row = keys + int64_t(blockIdx.x) * n;
  const RowBits<K> bits{row, largest};
  SelectState<U> s{0, 0, k};
  for (int shift = int(sizeof(U)) * 8 - 8; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0;
    __syncthreads();
    add_byte_histogram(bits, 0, n, s, shift, hist);
    __syncthreads();
    if (threadIdx.x < 32) pick_byte(hist, shift, s, &next);
    __syncthreads();
    s = next;
  }
  const int64_t out = int64_t(blockIdx.x) * k;
  if (k > kSortInBlock) {
    take_selected(bits, 0, n, s.prefix, s.rank, k, 0, 0, warp_sums, [&](int slot, int64_t i, U) {
      sel_keys[out + slot] = canonical(row[i]), sel_pos[out + slot] = i;
    });
    return;
  }
  take_selected(bits, 0, n, s.prefix, s.rank, k, 0, 0, warp_sums, [&](int slot, int64_t i, U u) {
    kept_bits[slot] = u, kept_pos[slot] = int(i);
  });
  __syncthreads();
  write_in_order(kept_bits, kept_pos, k, indices + out);
}

// Note [Multi-block select]: one byte's pass, block blockIdx.x over its slice of row blockIdx.y. row_hist [rows,
// 256] and arrivals [rows] are zero before each pass and left zero after it.
template <typename K>
__global__ void __launch_bounds__(kSelectThreads) select_pass_kernel(const K* keys, int64_t n, int64_t slice, int k,
                                                                     bool largest, int shift,
                                                                     SelectState<Bits<K>>* states, int* row_hist,
                                                                     unsigned* arrivals) {
  using U = Bits<K>;
  __shared__ int hist[256];
  __shared__ bool last;
  const int64_t r = blockIdx.y, begin = int64_t(blockIdx.x) * slice;
  const SelectState<U> s = shift == int(sizeof(U)) * 8 - 8 ? SelectState<U>{0, 0, k} : states[r];
  for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0;
  __syncthreads();
  add_byte_histogram(RowBits<K>{keys + r * n, largest}, begin, std::min(n, begin + slice), s, shift, hist);
  __syncthreads();
  int* sums = row_hist + r * 256;
  for (int d = threadIdx.x; d < 256; d += blockDim.x)
    if (hist[d]) atomicAdd(&sums[d], hist[d]);
  __threadfence();  // this block's adds are visible before its arrival is
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&arrivals[r], 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = atomicExch(&sums[d], 0);
  __syncthreads();
  if (threadIdx.x < 32) pick_byte(hist, shift, s, &states[r]);
  if (threadIdx.x == 0) arrivals[r] = 0;
}

// Note [Multi-block select]: each slice's keys above the k-th and its ties, to counts [rows, slices].
template <typename K>
__global__ void __launch_bounds__(kSelectThreads) select_count_kernel(const K* keys, int64_t n, int64_t slice,
                                                                      bool largest,
                                                                      const SelectState<Bits<K>>* states,
                                                                      int2* counts) {
  __shared__ int warp_sums[32];
  const int64_t r = blockIdx.y, begin = int64_t(blockIdx.x) * slice, end = std::min(n, begin + slice);
  const RowBits<K> bits{keys + r * n, largest};
  const Bits<K> kth = states[r].prefix;
  int above = 0, ties = 0;
#pragma unroll 8
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const Bits<K> u = bits(i);
    above += u > kth, ties += u == kth;
  }
  int above_total, ties_total;
  block_exclusive_sum(above, above_total, warp_sums);
  block_exclusive_sum(ties, ties_total, warp_sums);
  if (threadIdx.x == 0) counts[r * gridDim.x + blockIdx.x] = make_int2(above_total, ties_total);
}

// Note [Multi-block select]: each slice compacts its share of the k to sel_keys / sel_pos [rows, k].
template <typename K>
__global__ void __launch_bounds__(kSelectThreads) select_take_kernel(const K* keys, int64_t n, int64_t slice, int k,
                                                                     bool largest,
                                                                     const SelectState<Bits<K>>* states,
                                                                     const int2* counts, K* sel_keys,
                                                                     int64_t* sel_pos) {
  __shared__ int warp_sums[32];
  const int64_t r = blockIdx.y, begin = int64_t(blockIdx.x) * slice, out = r * k;
  const SelectState<Bits<K>> s = states[r];
  int above = 0, ties = 0;  // in the slices before this one
  for (int b = threadIdx.x; b < int(blockIdx.x); b += blockDim.x) {
    const int2 c = counts[r * gridDim.x + b];
    above += c.x, ties += c.y;
  }
  int above_before, ties_before;
  block_exclusive_sum(above, above_before, warp_sums);
  block_exclusive_sum(ties, ties_before, warp_sums);
  const K* row = keys + r * n;
  take_selected(RowBits<K>{row, largest}, begin, std::min(n, begin + slice), s.prefix, s.rank, k,
                above_before + std::min(ties_before, s.rank), ties_before, warp_sums,
                [&](int slot, int64_t i, Bits<K>) { sel_keys[out + slot] = canonical(row[i]), sel_pos[out + slot] = i; });
}

// Orders each row's k <= kSortInBlock selected keys (in position order) in shared memory: positions to indices.
template <typename K>
__global__ void __launch_bounds__(kSelectThreads) order_kernel(const K* sel_keys, const int64_t* sel_pos, int k,
                                                               bool largest, int64_t* indices) {
  using U = Bits<K>;
  __shared__ U kept_bits[kSortInBlock];
  __shared__ int kept_pos[kSortInBlock];
  const int64_t out = int64_t(blockIdx.x) * k;
  const RowBits<K> bits{sel_keys + out, largest};
  for (int j = threadIdx.x; j < k; j += blockDim.x) kept_bits[j] = bits(j), kept_pos[j] = int(sel_pos[out + j]);
  __syncthreads();
  write_in_order(kept_bits, kept_pos, k, indices + out);
}

// Slices per row: one unless the rows leave most of a wave of select blocks idle (Note [Multi-block select]).
int64_t slices_per_row(int64_t rows, int64_t n) {
  const int64_t wave = int64_t(wave_blocks()) * kThreads / kSelectThreads;
  return std::clamp<int64_t>((n + kSliceKeys - 1) / kSliceKeys, 1, std::max<int64_t>(1, wave / rows));
}

// Note [Multi-block select]: the k of each row to sel_keys / sel_pos in position order.
template <typename K>
void select_by_slices(const Tensor& keys, int64_t rows, int64_t n, int64_t k, bool largest, int64_t slices,
                      const Tensor& sel_keys, const Tensor& sel_pos, cudaStream_t stream) {
  using State = SelectState<Bits<K>>;
  // one int32 workspace: the states, the row histograms and arrivals (zeroed), the counts (int2); the states and
  // the counts start at even offsets, 8-byte aligned as their 64-bit fields and int2 loads need
  const auto even = [](int64_t ints) { return (ints + 1) / 2 * 2; };
  const int64_t slice = (n + slices - 1) / slices;
  const int64_t state_ints = even((int64_t(sizeof(State)) * rows + 3) / 4), hist_ints = even(rows * 257);
  Tensor work = empty_tensor(DimVector{state_ints + hist_ints + rows * slices * 2}, ScalarType::Int32, keys.device());
  auto* states = reinterpret_cast<State*>(work.data<int32_t>());
  int* row_hist = work.data<int32_t>() + state_ints;
  auto* arrivals = reinterpret_cast<unsigned*>(row_hist + rows * 256);
  auto* counts = reinterpret_cast<int2*>(row_hist + hist_ints);
  VT_CUDA_CHECK(cudaMemsetAsync(row_hist, 0, size_t(rows) * 257 * sizeof(int), stream));
  const dim3 grid{unsigned(slices), unsigned(rows)};
  const unsigned block = unsigned(select_threads(slice));
  const K* data = keys.data<K>();
  for (int shift = int(sizeof(Bits<K>)) * 8 - 8; shift >= 0; shift -= 8) {
    select_pass_kernel<K><<<grid, block, 0, stream>>>(data, n, slice, int(k), largest, shift, states, row_hist,
                                                      arrivals);
    VT_CUDA_CHECK(cudaGetLastError());
  }
  select_count_kernel<K><<<grid, block, 0, stream>>>(data, n, slice, largest, states, counts);
  VT_CUDA_CHECK(cudaGetLastError());
  select_take_kernel<K><<<grid, block, 0, stream>>>(data, n, slice, int(k), largest, states, counts,
                                                    sel_keys.data<K>(), sel_pos.data<int64_t>());
  VT_CUDA_CHECK(cudaGetLastError());
}

template <typename K>
void select_rows(const Tensor& keys, int64_t rows, int64_t n, int64_t k, bool largest, const Tensor& indices,
                 cudaStream_t stream) {
  const int64_t slices = slices_per_row(rows, n);
  if (slices == 1 && k <= kSortInBlock) {
    select_kernel<K><<<unsigned(rows), unsigned(select_threads(n)), 0, stream>>>(
        keys.data<K>(), n, int(k), largest, indices.data<int64_t>(), nullptr, nullptr);
    VT_CUDA_CHECK(cudaGetLastError());
    return;
  }
  Tensor sel_keys = empty_tensor(DimVector{rows * k}, keys.dtype(), keys.device());
  Tensor sel_pos = empty_tensor(DimVector{rows * k}, ScalarType::Int64, keys.device());
  if (slices > 1) {
    select_by_slices<K>(keys, rows, n, k, largest, slices, sel_keys, sel_pos, stream);
  } else {
    select_kernel<K><<<unsigned(rows), unsigned(select_threads(n)), 0, stream>>>(
        keys.data<K>(), n, int(k), largest, nullptr, sel_keys.data<K>(), sel_pos.data<int64_t>());
    VT_CUDA_CHECK(cudaGetLastError());
  }
  if (k > kSortInBlock) return segmented_sort(sel_keys, sel_pos, indices, rows, k, largest, stream);
  order_kernel<K><<<unsigned(rows), unsigned(select_threads(k)), 0, stream>>>(
      sel_keys.data<K>(), sel_pos.data<int64_t>(), int(k), largest, indices.data<int64_t>());
  VT_CUDA_CHECK(cudaGetLastError());
}

// Note [Top-k by radix select]. A 0-dim self is the sort's one key.
std::tuple<Tensor, Tensor> topk_cuda(const Tensor& self, int64_t k, int64_t dim, bool largest, bool sorted) {
  (void)sorted;  // the k come sorted either way
  const int64_t d = wrap_dim(dim, std::max<int64_t>(self.dim(), 1));  // the dim first, as torch (a 0-dim self too)
  const int64_t n = self.dim() == 0 ? 1 : self.size(d);
  VT_CHECK(k >= 0 && k <= n, "selected index k out of range");
  if (self.dim() == 0) {
    static const TypedOp<std::tuple<Tensor, Tensor>(const Tensor&, int64_t, bool, bool)> sort("vt::sort");
    return sort(self, dim, largest, true);
  }
  sort_rows::Rows r = sort_rows::rows_of(self, dim);
  DimVector shape = r.shape_last;
  shape.back() = k;
  Tensor values = empty_tensor(shape, self.dtype(), self.device());
  Tensor indices = empty_tensor(shape, ScalarType::Int64, self.device());
  if (r.rows * k > 0) {
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
    take_rows(values, r.keys, indices, r.rows, k, r.n, stream);
  }
  return {sort_rows::restore(r, values), sort_rows::restore(r, indices)};
}

}  // namespace
}  // namespace vt::cuda

VT_LIBRARY(vt, topk_cuda) { m.impl("topk", vt::DispatchKey::CUDA, &vt::cuda::topk_cuda); }
