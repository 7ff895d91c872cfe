#pragma once
// The CUDA backend of the shared reductions (../reduce_impl.h).
//
// A reduction iterator has an accumulator operand with stride 0 on reduced dims. Its dims split into kept ones
// (one accumulator each: `num_out` outputs) and reduced ones (`red` elements per output), each side with its
// own offset calculator. Two kernels:
//  - inner: the input's fastest dim is reduced (row sums, full reductions). A group of G threads (a power of
//    two up to the block) shares one output and strides over its elements, with 16-byte vector loads when
//    the reduced elements are one dense run; the group combines through shared memory.
//  - outer: the fastest dim is kept (column sums). One thread per output walks its elements; neighbouring
//    threads read neighbouring addresses, so loads coalesce. Note [Column vectors]: where the kept fastest dim
//    is dense and aligned, a thread owns V adjacent outputs and reads them as one 16-byte vector per reduced
//    element (4 bytes a load kept too few bytes in flight: a column sum of 1 GiB took 1.36x torch's time), and
//    a block is a tile of 32 such columns x 8 row lanes (Note [Column tiles]).
// When outputs are too few to fill the GPU, the reduced range is split over blockIdx.y; each split writes a
// partial accumulator and a second kernel combines them in split order (deterministic: no atomics).
//
// Note [Interleaved splits]: the inner kernel's vector path deals an output's elements to its splits in chunks
// of one unrolled step (group x V x kUnroll elements), split y taking chunks y, y + splits, ... (the last split
// also the remainder past the last whole chunk), rather than one contiguous range per split. The blocks of a
// wave then read neighbouring chunks, as the elementwise kernels' blocks do, instead of a thousand streams a
// megabyte apart: a sum of 1 GiB reached 95% of a copy's rate with ranges (1.07x torch's time on an H100), 102%
// with chunks (1.00x). The outer kernel deals rows the same way (split y takes rows y, y + splits, ...), so the
// splits of a wave read neighbouring rows.
//
// Note [Split-major partials]: the outer kernel's threads own adjacent outputs, so its partials are stored split
// by split (partial[split * outputs + output]): a warp's partial writes are one coalesced run, where the
// output-major layout the inner kernel uses (partial[output * splits + split]) scattered them a sector apart.
// The combine then takes a block of 8 outputs x 32 split lanes, lane y folding splits y, y + 32, ... and the
// lanes folded in a fixed order through shared memory (deterministic). A column sum of 1 GiB on an H100 took
// 1.08-1.09x torch's time with output-major partials, whether its splits read row ranges or dealt rows, with two
// or four loads in flight.
//
// Note [Column tiles]: a block of the column path is 32 vector columns x 8 row lanes, not 256 columns: a column
// sum of a tall, narrow matrix (a bias gradient, [8192, 256] float32: 64 vector columns) kept a block of 256
// threads of which 64 had work, 128 splits of them, six warps an SM. Now the 8 lanes of a block deal its
// split's rows among themselves (lane y of split s takes rows 8 s + y, 8 (s + splits) + y, ...: Note
// [Interleaved splits] with splits x lanes) and add in a fixed order through shared memory before the split's
// partial is stored, and the splits fill the machine with blocks that all work. Column sums of MiniGPT's bias
// gradients on an H100 (CUPTI, both kernels, a sum alone): [8192, 256] 12.1 -> 5.5 us (torch 12.9), [8192, 768]
// 13.1 -> 9.1 (15.8), [8192, 1024] 14.4 -> 12.3 (17.1), [8192, 96] 11.7 -> 4.8 (7.1); with the combine below.
#include <algorithm>
#include <vector>

#include "../lanes.h"

#include "loops.cuh"
#include "vt/core/ops.h"

namespace vt::cuda {

struct ReduceGeometry {
  int64_t num_out = 1, red = 1;
  int64_t per_split = 1;  // reduced elements per split (a multiple of the vector width)
  int splits = 1;
  int group = 1;  // inner kernel: threads per output
  bool inner = false, vectorized = false;
  bool columns = false;  // outer kernel: V adjacent outputs per thread (Note [Column vectors])
  bool split_major = false;  // outer kernel: partials stored split by split (Note [Split-major partials])
  int64_t out_col_stride = 0;  // outer kernel, columns: byte stride between adjacent outputs
  int64_t red_stride = -1;  // byte stride of the one reduced dim, or -1 when several (offset calculator)
};

// Byte offset of reduced element r within one output's elements.
//
// Note [Unrolled rows]: the outer kernel's unrolled loads (several rows in flight) take the one reduced dim's
// stride; where the reduced dims are several (they did not coalesce: a reduction over dims 0 and 2), every row
// goes through the one-load loop and the offset calculator. Unrolled, the calculator's copies were a fifth of the
// file's device code (PTX 225k -> 176k lines without them), for layouts a column reduction rarely has.
__device__ __forceinline__ int64_t reduced_offset(const ReduceGeometry& g, const OffsetCalc<1>& calc, int64_t r) {
  if (g.red_stride >= 0) return r * g.red_stride;
  int64_t off[1];
  calc.get(r, off);
  return off[0];
}

// Loads in flight per thread: independent accumulators hide the latency of each load and of the combine chain.
inline constexpr int kUnroll = 4;  // the outer kernel combines its four accumulators by hand
// Note [Column loads in flight]: a thread of the column path keeps 4 vector loads in flight, 2 where a vector holds
// 8 elements (1- and 2-byte types). A block (Note [Column tiles]) then still has 8 KB in flight, 64 KB an SM at 8
// blocks, several times what an H100's bandwidth x latency asks of an SM (~15 KB); 4 loads unrolled 32 accumulators
// per thread for those types, the largest kernels of the file.
template <int V> inline constexpr int kColumnLoads = V >= 8 ? 2 : 4;
// Note [Column tiles]: vector columns x row lanes of an outer block; Note [Split-major partials]: outputs x split
// lanes of a combine block.
inline constexpr int kTileCols = 32, kTileRows = kThreads / kTileCols;
inline constexpr int kSplitOuts = 8, kSplitLanes = kThreads / kSplitOuts;

template <int N> struct LaneStrides {
  int64_t v[N];
};

template <typename AccT, typename C> __device__ AccT group_combine(AccT v, int group, const C& c) {
  __shared__ AccT smem[kThreads];
  const int tid = threadIdx.x;
  smem[tid] = v;
  __syncthreads();
  for (int s = group / 2; s > 0; s >>= 1) {
    if ((tid & (group - 1)) < s) smem[tid] = c(smem[tid], smem[tid + s]);
    __syncthreads();
  }
  AccT r = smem[tid & ~(group - 1)];
  __syncthreads();  // smem is reused by the next output
  return r;
}

// Note [Lift and project]: a combine functor may say how an element enters the accumulator (`lift`: its square
// for a sum of squares, a one-element Welford state for a variance) and what of the folded accumulator is stored
// (`project`: a mean's division, a variance's, a root). Without them an element is its value and the
// accumulator is stored as it is (sum, prod, amax). The projection runs once per output, where the result is
// written (the main kernels with one split, the split combine otherwise), so mean, var, std and the norms are
// one launch each, as torch's, instead of a float64 copy, a sum, a division and a cast.
template <typename AccT, typename C, typename X> __device__ __forceinline__ AccT lift(const C& c, X x) {
  if constexpr (requires { c.lift(x); }) return c.lift(x);
  else return AccT(x);
}
template <typename C, typename AccT> __device__ __forceinline__ auto project(const C& c, const AccT& a) {
  if constexpr (requires { c.project(a); }) return c.project(a);
  else return a;
}

template <typename S, typename AccT, typename C> __device__ __forceinline__ AccT load_acc(const char* p, const C& c) {
  return lift<AccT>(c, opmath_t<S>(*reinterpret_cast<const S*>(p)));
}

// Writes one output's accumulator: to the result (projected, converted to its dtype), or to its split's slot in
// `partial`.
template <typename OutT, typename AccT, typename C>
__device__ __forceinline__ void store_acc(char* out, int64_t out_off, AccT* partial, const ReduceGeometry& g,
                                          int64_t o, AccT a, const C& c) {
  if (g.splits == 1) *reinterpret_cast<OutT*>(out + out_off) = OutT(opmath_t<OutT>(project(c, a)));
  else if (g.split_major) partial[int64_t(blockIdx.y) * g.num_out + o] = a;  // Note [Split-major partials]
  else partial[o * g.splits + blockIdx.y] = a;
}

template <typename S, typename OutT, typename AccT, typename C, int V>
__global__ void __launch_bounds__(kThreads)
    reduce_inner_kernel(const char* in, char* out, AccT* partial, OffsetCalc<2> kept, OffsetCalc<1> reduced,
                        ReduceGeometry g, AccT init, C c) {
  const int lane = threadIdx.x & (g.group - 1);
  const int groups = kThreads / g.group;
  const int64_t r0 = int64_t(blockIdx.y) * g.per_split;
  const int64_t r1 = r0 + g.per_split < g.red ? r0 + g.per_split : g.red;
  // Every thread runs the same number of iterations: group_combine synchronises the block.
  for (int64_t base = int64_t(blockIdx.x) * groups; base < g.num_out; base += int64_t(gridDim.x) * groups) {
    const int64_t o = base + threadIdx.x / g.group;
    const bool valid = o < g.num_out;
    AccT a = init;
    int64_t off[2] = {0, 0};
    if (valid) {
      kept.get(o, off);
      const char* p = in + off[1];
      if (g.vectorized) {  // Note [Interleaved splits]; with one split, chunk after chunk
        const int64_t step = int64_t(g.group) * V, chunk = step * kUnroll, chunks = g.red / chunk;
        AccT acc[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) acc[u] = init;
        for (int64_t ci = blockIdx.y; ci < chunks; ci += g.splits) {
          const int64_t r = ci * chunk + int64_t(lane) * V;
          Vec<S, V> v[kUnroll];
#pragma unroll
          for (int u = 0; u < kUnroll; ++u)
            v[u] = *reinterpret_cast<const Vec<S, V>*>(p + (r + u * step) * int64_t(sizeof(S)));
#pragma unroll
          for (int u = 0; u < kUnroll; ++u)
#pragma unroll
            for (int j = 0; j < V; ++j) acc[u] = c(acc[u], lift<AccT>(c, opmath_t<S>(v[u].v[j])));
        }
        if (int(blockIdx.y) == g.splits - 1) {  // past the last whole chunk: whole vectors, then elements
          const int64_t full = g.red / V * V;
          for (int64_t r = chunks * chunk + int64_t(lane) * V; r < full; r += step) {
            Vec<S, V> v = *reinterpret_cast<const Vec<S, V>*>(p + r * int64_t(sizeof(S)));
#pragma unroll
            for (int j = 0; j < V; ++j) acc[0] = c(acc[0], lift<AccT>(c, opmath_t<S>(v.v[j])));
          }
          for (int64_t t = full + lane; t < g.red; t += g.group)
            acc[0] = c(acc[0], load_acc<S, AccT>(p + t * int64_t(sizeof(S)), c));
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) a = c(a, acc[u]);
      } else {
        for (int64_t r = r0 + lane; r < r1; r += g.group)
          a = c(a, load_acc<S, AccT>(p + reduced_offset(g, reduced, r), c));
      }
    }
    a = group_combine(a, g.group, c);
    if (valid && lane == 0) store_acc<OutT>(out, off[0], partial, g, o, a, c);
  }
}

template <typename S, typename OutT, typename AccT, typename C, int V>
__global__ void __launch_bounds__(kThreads)
    reduce_outer_kernel(const char* in, char* out, AccT* partial, OffsetCalc<2> kept, OffsetCalc<1> reduced,
                        ReduceGeometry g, AccT init, C c) {
  // Note [Interleaved splits], outer form: split y walks rows y, y + splits, y + 2 splits, ...
  const int64_t r0 = blockIdx.y, step = gridDim.y;
  if (g.columns) {  // Note [Column vectors]: outputs V*t .. V*t + V-1, adjacent in the input; Note [Column tiles]
    const int tx = threadIdx.x % kTileCols, ty = threadIdx.x / kTileCols;
    const int64_t first = r0 * kTileRows + ty, stride = step * kTileRows, units = g.num_out / V;
    __shared__ AccT lanes[kThreads];
    for (int64_t tile = blockIdx.x; tile * kTileCols < units; tile += gridDim.x) {  // uniform across the block
      const int64_t t = tile * kTileCols + tx;
      constexpr int U = kColumnLoads<V>;  // Note [Column loads in flight]: U 16-byte loads, U x V accumulators
      AccT acc[U][V];
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int j = 0; j < V; ++j) acc[u][j] = init;
      int64_t off[2] = {0, 0};
      if (t < units) {
        kept.get(t * V, off);
        const char* p = in + off[1];
        int64_t r = first;
        for (; g.red_stride >= 0 && r + (U - 1) * stride < g.red; r += U * stride) {  // Note [Unrolled rows]
          Vec<S, V> x[U];
#pragma unroll
          for (int u = 0; u < U; ++u)
            x[u] = *reinterpret_cast<const Vec<S, V>*>(p + (r + u * stride) * g.red_stride);
#pragma unroll
          for (int u = 0; u < U; ++u)
#pragma unroll
            for (int j = 0; j < V; ++j) acc[u][j] = c(acc[u][j], lift<AccT>(c, opmath_t<S>(x[u].v[j])));
        }
        for (; r < g.red; r += stride) {
          Vec<S, V> x = *reinterpret_cast<const Vec<S, V>*>(p + reduced_offset(g, reduced, r));
#pragma unroll
          for (int j = 0; j < V; ++j) acc[0][j] = c(acc[0][j], lift<AccT>(c, opmath_t<S>(x.v[j])));
        }
      }
      // The row lanes into lane 0 in a fixed order, one output of the vector at a time.
#pragma unroll
      for (int j = 0; j < V; ++j) {
        AccT folded = acc[0][j];
#pragma unroll
        for (int u = 1; u < U; ++u) folded = c(folded, acc[u][j]);
        lanes[threadIdx.x] = folded;
        __syncthreads();
        if (ty == 0 && t < units) {
          AccT a = lanes[tx];
          for (int y = 1; y < kTileRows; ++y) a = c(a, lanes[y * kTileCols + tx]);
          store_acc<OutT>(out, off[0] + j * g.out_col_stride, partial, g, t * V + j, a, c);
        }
        __syncthreads();
      }
    }
    return;
  }
  for (int64_t o = int64_t(blockIdx.x) * kThreads + threadIdx.x; o < g.num_out; o += int64_t(gridDim.x) * kThreads) {
    int64_t off[2];
    kept.get(o, off);
    const char* p = in + off[1];
    AccT acc[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc[u] = init;
    int64_t r = r0;
    for (; g.red_stride >= 0 && r + (kUnroll - 1) * step < g.red; r += kUnroll * step) {  // Note [Unrolled rows]
      AccT x[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) x[u] = load_acc<S, AccT>(p + (r + u * step) * g.red_stride, c);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) acc[u] = c(acc[u], x[u]);
    }
    for (; r < g.red; r += step) acc[0] = c(acc[0], load_acc<S, AccT>(p + reduced_offset(g, reduced, r), c));
    AccT a = c(c(acc[0], acc[1]), c(acc[2], acc[3]));
    store_acc<OutT>(out, off[0], partial, g, o, a, c);
  }
}

// Combines each output's split partials in split order: a group of threads per output (as the inner kernel),
// or, for split-major partials, one thread per output folding them one split after another.
template <typename OutT, typename AccT, typename C>
__global__ void __launch_bounds__(kThreads)
    reduce_splits_kernel(char* out, const AccT* partial, OffsetCalc<2> kept, ReduceGeometry g, int group, AccT init,
                         C c) {
  if (g.split_major) {  // Note [Split-major partials]: kSplitOuts outputs x kSplitLanes lanes a block
    __shared__ AccT lanes[kThreads];
    const int x = threadIdx.x % kSplitOuts, y = threadIdx.x / kSplitOuts;
    for (int64_t base = int64_t(blockIdx.x) * kSplitOuts; base < g.num_out; base += int64_t(gridDim.x) * kSplitOuts) {
      const int64_t o = base + x;
      AccT a = init;
      if (o < g.num_out)
#pragma unroll 4
        for (int s = y; s < g.splits; s += kSplitLanes) a = c(a, partial[int64_t(s) * g.num_out + o]);
      lanes[threadIdx.x] = a;
      __syncthreads();
      if (y == 0 && o < g.num_out) {
        for (int l = 1; l < kSplitLanes; ++l) a = c(a, lanes[l * kSplitOuts + x]);
        int64_t off[2];
        kept.get(o, off);
        *reinterpret_cast<OutT*>(out + off[0]) = OutT(opmath_t<OutT>(project(c, a)));
      }
      __syncthreads();
    }
    return;
  }
  const int lane = threadIdx.x & (group - 1), groups = kThreads / group;
  for (int64_t base = int64_t(blockIdx.x) * groups; base < g.num_out; base += int64_t(gridDim.x) * groups) {
    const int64_t o = base + threadIdx.x / group;
    const bool valid = o < g.num_out;
    AccT a = init;
    if (valid)
      for (int s = lane; s < g.splits; s += group) a = c(a, partial[o * g.splits + s]);
    a = group_combine(a, group, c);
    if (valid && lane == 0) {
      int64_t off[2];
      kept.get(o, off);
      *reinterpret_cast<OutT*>(out + off[0]) = OutT(opmath_t<OutT>(project(c, a)));
    }
  }
}

// Lane kernels: one thread per lane; the functor walks the lane.
template <int N, typename F>
__global__ void lanes_kernel(Inputs<N> ptrs, OffsetCalc<N> calc, LaneStrides<N> lane_strides, int64_t lanes,
                             int64_t n, F f) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < lanes; k += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    calc.get(k, off);
    char* p[N];
#pragma unroll
    for (int i = 0; i < N; ++i) p[i] = const_cast<char*>(ptrs.ptr[i]) + off[i];
    f(p, lane_strides.v, n);
  }
}

// How to split a reduction across the GPU (see the header comment): which dims are kept and reduced, the
// group size, whether loads can be vectors of V elements, and how many splits fill the machine.
inline ReduceGeometry plan_reduction(TensorIterator& it, int V, int64_t elem_size, DimVector& kept, DimVector& red) {
  ReduceGeometry g;
  for (int d = 0; d < it.ndim(); ++d) (it.stride(0, d) == 0 && it.shape()[size_t(d)] > 1 ? red : kept).push_back(d);
  for (int64_t d : kept) g.num_out *= it.shape()[size_t(d)];
  for (int64_t d : red) g.red *= it.shape()[size_t(d)];
  g.inner = !red.empty() && red[0] == 0;
  if (red.size() == 1) g.red_stride = it.stride(1, int(red[0]));
  const int64_t wave = grid_size(int64_t(1) << 40);
  int64_t unit = 1, blocks = 0, min_per_split = 64;
  if (g.inner) {
    int64_t vec_bytes = int64_t(V) * elem_size;
    g.vectorized = V > 1 && red.size() == 1 && it.stride(1, 0) == elem_size &&
                   reinterpret_cast<uintptr_t>(it.operand(1).data_ptr()) % uint64_t(vec_bytes) == 0;
    for (int64_t d : kept) g.vectorized = g.vectorized && it.stride(1, int(d)) % vec_bytes == 0;
    unit = g.vectorized ? V : 1;
    int64_t units = (g.red + unit - 1) / unit;
    while (g.group < kThreads && g.group < units) g.group *= 2;
    blocks = (g.num_out * g.group + kThreads - 1) / kThreads;
    min_per_split = int64_t(g.group) * unit * 8;
  } else {
    // Note [Column vectors]: V adjacent outputs per thread where the kept fastest dim is dense, a multiple of V
    // long, and every vector starts 16-byte aligned (the base, the other kept dims' and the reduced strides).
    const int64_t vec_bytes = int64_t(V) * elem_size;
    g.columns = V > 1 && !kept.empty() && kept[0] == 0 && it.stride(1, 0) == elem_size &&
                it.shape()[0] % V == 0 && reinterpret_cast<uintptr_t>(it.operand(1).data_ptr()) % uint64_t(vec_bytes) == 0;
    for (size_t k = 1; k < kept.size(); ++k) g.columns = g.columns && it.stride(1, int(kept[k])) % vec_bytes == 0;
    for (int64_t d : red) g.columns = g.columns && it.stride(1, int(d)) % vec_bytes == 0;
    if (g.columns) g.out_col_stride = it.stride(0, 0);
    blocks = g.columns ? (g.num_out / V + kTileCols - 1) / kTileCols : (g.num_out + kThreads - 1) / kThreads;
  }
  blocks = std::min(blocks, wave);
  int64_t splits = 1;
  if (blocks < wave) splits = std::clamp<int64_t>(std::min(wave / blocks, g.red / min_per_split), 1, 65535);
  g.per_split = ((g.red + splits - 1) / splits + unit - 1) / unit * unit;
  g.splits = int((g.red + g.per_split - 1) / g.per_split);
  g.split_major = !g.inner && g.splits > 1;
  return g;
}

template <int N> OffsetCalc<N> offsets_over(TensorIterator& it, const DimVector& dims, int first_operand) {
  DimVector sizes;
  for (int64_t d : dims) sizes.push_back(it.shape()[size_t(d)]);
  return OffsetCalc<N>(sizes, [&](int a, int k) { return it.stride(first_operand + a, int(dims[size_t(k)])); },
                       it.numel());
}

struct CudaReduce {
  // The result is written in its final dtype when that is the input's (amax of float16) or the accumulator's
  // (sum of int32 -> int64); reduce_impl.h converts any other.
  static constexpr bool kStoresInputDtype = true;
  static constexpr bool kFoldsOnHost = false;  // Note [Host full folds]

  // Only folds that MayWiden get the accumulator-dtype kernels (Note [Reduce output dtypes]).
  template <typename S, bool MayWiden, typename AccT, typename C>
  static void reduce(TensorIterator& it, AccT init, const C& c) {
    if constexpr (MayWiden)
      if (it.operand(0).dtype() == scalar_type_of<AccT>) return launch<S, AccT, AccT>(it, init, c);
    VT_INTERNAL_ASSERT(it.operand(0).dtype() == scalar_type_of<S>, "reduce: output dtype");
    launch<S, S, AccT>(it, init, c);
  }

  template <typename S, typename OutT, typename AccT, typename C>
  static void launch(TensorIterator& it, AccT init, const C& c) {
    constexpr int V = 16 / sizeof(S) > 8 ? 8 : int(16 / sizeof(S));
    const int device = it.device().index;
    DeviceGuard guard(device);  // before plan_reduction: its splits follow this device's SM count (grid_size)
    DimVector kept_dims, reduced_dims;
    ReduceGeometry g = plan_reduction(it, V, int64_t(sizeof(S)), kept_dims, reduced_dims);
    auto stream = reinterpret_cast<cudaStream_t>(current_stream(device));
    OffsetCalc<2> kept = offsets_over<2>(it, kept_dims, 0);
    OffsetCalc<1> reduced = offsets_over<1>(it, reduced_dims, 1);
    // Partials are allocated and freed on this stream, so the allocator reuses them only after the kernels.
    // Bytes: an accumulator may be a struct (a Welford state), which has no dtype.
    Tensor partial;
    if (g.splits > 1)
      partial = empty_tensor(DimVector{g.num_out * g.splits * int64_t(sizeof(AccT))}, ScalarType::UInt8, it.device());
    AccT* part = g.splits > 1 ? reinterpret_cast<AccT*>(partial.data_ptr()) : nullptr;
    const char* in = it.operand(1).data_ptr();
    char* out = it.operand(0).data_ptr();
    // grid_size counts blocks of kThreads work items: a column tile is kTileCols vector columns
    dim3 grid(unsigned(grid_size(g.columns ? g.num_out / V * kTileRows : g.num_out * g.group)), unsigned(g.splits));
    if (g.inner)
      reduce_inner_kernel<S, OutT, AccT, C, V><<<grid, kThreads, 0, stream>>>(in, out, part, kept, reduced, g, init, c);
    else
      reduce_outer_kernel<S, OutT, AccT, C, V><<<grid, kThreads, 0, stream>>>(in, out, part, kept, reduced, g, init, c);
    VT_CUDA_CHECK(cudaGetLastError());
    if (g.splits > 1) {
      // threads per output: up to the splits (output-major partials) or kSplitLanes (Note [Split-major partials])
      int group = 1;
      while (!g.split_major && group < kThreads && group < g.splits) group *= 2;
      if (g.split_major) group = kSplitLanes;
      reduce_splits_kernel<OutT><<<grid_size(g.num_out * group), kThreads, 0, stream>>>(out, part, kept, g, group,
                                                                                        init, c);
      VT_CUDA_CHECK(cudaGetLastError());
    }
  }

  template <typename F>
  static void lanes(const std::vector<Tensor>& tensors, int noutputs, int64_t dim, int64_t n, const F& f) {
    std::vector<int64_t> lane_strides;
    TensorIterator it = lane_iterator(tensors, noutputs, dim, lane_strides);
    if (it.numel() == 0) return;
    constexpr int N = F::kTensors;
    VT_INTERNAL_ASSERT(int(tensors.size()) == N, "lanes: tensor count");
    const int device = it.device().index;
    DeviceGuard guard(device);
    auto stream = reinterpret_cast<cudaStream_t>(current_stream(device));
    Inputs<N> ptrs;
    LaneStrides<N> st;
    for (int i = 0; i < N; ++i) ptrs.ptr[i] = it.operand(i).data_ptr(), st.v[i] = lane_strides[size_t(i)];
    OffsetCalc<N> calc(it.shape(), [&](int a, int d) { return it.stride(a, d); }, it.numel());
    lanes_kernel<N><<<grid_size(it.numel()), kThreads, 0, stream>>>(ptrs, calc, st, it.numel(), n, f);
    VT_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace vt::cuda
